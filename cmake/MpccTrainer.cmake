# MpccTrainer.cmake: mpcc_add_trainer, a trainer from a .mp file inside a CMake project.
#
#   mpcc_add_trainer(NAME model.mp [TARGET c|cuda] [DEVICES n] [DEFINES key=value...] [LIBRARY])
#
# Runs `mpcc model.mp --emit=c -o NAME.c` (with LIBRARY also `--emit-header NAME.h`) and
# `mpcc model.mp --emit=plan -o NAME.report` at build time into ${CMAKE_CURRENT_BINARY_DIR}/NAME_mpcc/, then builds
#   - an executable NAME (the stand-alone trainer: mpirun -np N ./NAME --steps ...), or
#   - with LIBRARY, a library NAME (static or shared as BUILD_SHARED_LIBS says) exposing the C
#     API of NAME.h (NAME_create, NAME_step, NAME_save, NAME_load, ...; docs/embedding.md),
#     whose include directory is the generated folder, so `#include "NAME.h"` works for
#     whatever links it;
# linked to mpcc::mprt. The generated files depend on the .mp file and on the mpcc executable,
# so editing either rebuilds them; an error in the .mp file fails the build with mpcc's
# file:line:col diagnostic. DEVICES n is -D cluster.devices=n; DEFINES are more -D overrides
# (train.batch=64, cluster.preset=cpu, ...). TARGET cuda emits a CUDA trainer (NAME.cu, no C
# API) linked to mpcc::mprt_cuda; the project must enable the CUDA language.
#
# Properties set on the target: MPCC_REPORT (the report's path), MPCC_SOURCE (the generated
# source), MPCC_HEADER (the C API header, LIBRARY only).
#
# Works both from an installed package (find_package(mpcc)) and inside mpcc's own build
# (where the targets are mpcc and mprt); the first found wins.
include_guard(GLOBAL)

function(_mpcc_trainer_targets out_mpcc out_rt out_rt_cuda)
  if(TARGET mpcc::mpcc)
    set(${out_mpcc} mpcc::mpcc PARENT_SCOPE)
    set(${out_rt} mpcc::mprt PARENT_SCOPE)
    set(${out_rt_cuda} mpcc::mprt_cuda PARENT_SCOPE)
  elseif(TARGET mpcc AND TARGET mprt)
    set(${out_mpcc} mpcc PARENT_SCOPE)
    set(${out_rt} mprt PARENT_SCOPE)
    set(${out_rt_cuda} mprt_cuda PARENT_SCOPE)
  else()
    message(FATAL_ERROR "mpcc_add_trainer: no mpcc found; call find_package(mpcc REQUIRED) first")
  endif()
endfunction()

function(mpcc_add_trainer name mp)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "LIBRARY" "TARGET;DEVICES" "DEFINES")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "mpcc_add_trainer(${name}): unexpected arguments: ${ARG_UNPARSED_ARGUMENTS}\n"
                        "usage: mpcc_add_trainer(NAME model.mp [TARGET c|cuda] [DEVICES n] "
                        "[DEFINES key=value...] [LIBRARY])")
  endif()
  if(NOT name MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "mpcc_add_trainer: the name '${name}' must be a C identifier (it prefixes the C API)")
  endif()
  if(NOT ARG_TARGET)
    set(ARG_TARGET c)
  endif()
  if(NOT ARG_TARGET MATCHES "^(c|cuda)$")
    message(FATAL_ERROR "mpcc_add_trainer(${name}): TARGET must be c or cuda, not '${ARG_TARGET}'")
  endif()
  if(DEFINED ARG_DEVICES AND NOT ARG_DEVICES MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "mpcc_add_trainer(${name}): DEVICES must be a positive integer, not '${ARG_DEVICES}'")
  endif()
  _mpcc_trainer_targets(mpcc_exe rt rt_cuda)
  if(ARG_TARGET STREQUAL "cuda")
    if(NOT TARGET ${rt_cuda})
      message(FATAL_ERROR "mpcc_add_trainer(${name}): TARGET cuda needs an mpcc built with its CUDA runtime")
    endif()
    if(ARG_LIBRARY)
      message(FATAL_ERROR "mpcc_add_trainer(${name}): LIBRARY (the C API) is available for TARGET c only")
    endif()
    set(rt ${rt_cuda})
  endif()

  get_filename_component(mp_abs "${mp}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${mp_abs}")
    message(FATAL_ERROR "mpcc_add_trainer(${name}): no such file: ${mp_abs}")
  endif()
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/${name}_mpcc")
  set(report "${dir}/${name}.report")
  set(defs "")
  if(DEFINED ARG_DEVICES)
    list(APPEND defs -D "cluster.devices=${ARG_DEVICES}")
  endif()
  foreach(d IN LISTS ARG_DEFINES)
    list(APPEND defs -D "${d}")
  endforeach()
  if(ARG_TARGET STREQUAL "c" AND NOT ARG_LIBRARY)
    set(src "${dir}/${name}.c")
    set(hdr "")
    set(outputs "${src}" "${report}")
    set(emit --emit=c)
  elseif(ARG_TARGET STREQUAL "c")
    if(name STREQUAL "train" OR name STREQUAL "trainer")
      message(FATAL_ERROR "mpcc_add_trainer: a LIBRARY cannot be named '${name}' "
                          "(${name}_step/${name}_main are the trainer's own functions)")
    endif()
    set(src "${dir}/${name}.c")
    set(hdr "${dir}/${name}.h")
    set(outputs "${src}" "${hdr}" "${report}")
    set(emit --emit=c --emit-header "${hdr}")
  else()
    set(src "${dir}/${name}.cu")
    set(hdr "")
    set(outputs "${src}" "${report}")
    set(emit --emit=cuda)
  endif()
  file(MAKE_DIRECTORY "${dir}")
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${mpcc_exe} "${mp_abs}" ${defs} ${emit} -o "${src}"
    COMMAND ${mpcc_exe} "${mp_abs}" ${defs} --emit=plan -o "${report}"
    DEPENDS "${mp_abs}" $<TARGET_FILE:${mpcc_exe}>
    WORKING_DIRECTORY "${dir}"
    COMMENT "mpcc: ${mp} -> ${name} (report: ${name}_mpcc/${name}.report)"
    VERBATIM)

  if(ARG_LIBRARY)
    add_library(${name} ${src} ${hdr})
    target_compile_definitions(${name} PRIVATE MPCC_NO_MAIN)
    target_include_directories(${name} PUBLIC "$<BUILD_INTERFACE:${dir}>")
    target_link_libraries(${name} PUBLIC ${rt})
  else()
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE ${rt})
  endif()
  set_target_properties(${name} PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON
                        MPCC_REPORT "${report}" MPCC_SOURCE "${src}" MPCC_HEADER "${hdr}")
endfunction()
