# layers.cmake - the folders of src/ may include only the layers below them
# (src/CMakeLists.txt draws them): checked at configure time, so that a
# report that reads a target's mapping, or an analysis that renders, fails
# the build instead of entering it. The preload (src/preload) shares only
# the mapping's format with the rest.
set(MC_LAYERS_common "common")
set(MC_LAYERS_analysis "common;analysis")
set(MC_LAYERS_report "common;analysis;report")
set(MC_LAYERS_load "common;load")
set(MC_LAYERS_cli "common;analysis;report;load;cli")
set(MC_LAYERS_preload "common;preload")
foreach(layer common analysis report load cli preload)
  file(GLOB files ${PROJECT_SOURCE_DIR}/src/${layer}/*.c ${PROJECT_SOURCE_DIR}/src/${layer}/*.h)
  foreach(f ${files})
    file(STRINGS ${f} incs REGEX "^#include \"[a-z]+/")
    foreach(inc ${incs})
      string(REGEX REPLACE "^#include \"([a-z]+)/.*" "\\1" dir "${inc}")
      if(NOT dir IN_LIST MC_LAYERS_${layer})
        message(FATAL_ERROR "${f}: src/${layer} may not include ${dir}/ (${inc}); "
                            "see the layers in src/CMakeLists.txt")
      endif()
    endforeach()
  endforeach()
endforeach()
