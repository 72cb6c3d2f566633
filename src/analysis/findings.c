/* findings.c - the table of finding kinds (findings.h), and its look-ups. */
#include <string.h>

#include "analysis/findings.h"

const struct mc_finding_def mc_findings[MC_F_COUNT] = {
#define MC_FINDING_DEF(name, code, title, sev, metric) {code, title, MC_SEV_##sev, metric},
    MC_FINDING_MAP(MC_FINDING_DEF)
#undef MC_FINDING_DEF
};

const enum mc_finding_kind mc_metric_findings[MC_METRIC_FINDINGS] = {
    MC_F_FD_CREEP, MC_F_SOCKET_CREEP, MC_F_CLOSE_WAIT_CREEP, MC_F_THREAD_CREEP,
    MC_F_UNJOINED_THREAD_CREEP};

const char *mc_severity_name(enum mc_severity s)
{
    static const char *names[] = {"creep", "cost", "info"};
    return (unsigned)s < 3 ? names[s] : "info";
}

int mc_finding_parse(const char *s)
{
    for (int i = 0; s && i < MC_F_COUNT; i++)
        if (!strcmp(s, mc_findings[i].code) || !strcmp(s, mc_findings[i].title)) return i;
    return -1;
}
