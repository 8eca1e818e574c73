# Decides whether this build has a CUDA side (the mprt_cuda runtime, its tests, nvcc checks of
# generated trainers) and enables the CUDA language if so. Included from the top-level
# CMakeLists.txt because CMake wants a language enabled in the highest directory whose
# targets use it (the tests link mprt_cuda). Sets MPCC_HAVE_CUDA.
#
# Skipped, with a message, when there is no nvcc, when CUDA::cublas or NCCL is missing, or
# under MPCC_SANITIZE (the sanitizer flags are global compile options nvcc does not take).
option(MPCC_CUDA "Build the CUDA runtime (mprt_cuda) when nvcc, cuBLAS and NCCL are found" ON)
set(MPCC_HAVE_CUDA OFF)
if(NOT MPCC_CUDA)
  message(STATUS "CUDA runtime: disabled (MPCC_CUDA=OFF)")
  return()
endif()
if(MPCC_SANITIZE)
  message(STATUS "CUDA runtime: skipped in the sanitizer build (nvcc does not take -fsanitize)")
  return()
endif()

include(CheckLanguage)
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "CUDA runtime: skipped (no CUDA compiler found; set CUDACXX to nvcc's path)")
  return()
endif()

# Ampere (A100) and Hopper (H100): the GPUs the cost-model presets describe.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

find_package(CUDAToolkit)
list(APPEND CMAKE_MODULE_PATH ${CMAKE_CURRENT_LIST_DIR})
find_package(NCCL)
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cublas OR NOT NCCL_FOUND)
  message(STATUS "CUDA runtime: skipped (nvcc found, but cuBLAS or NCCL is missing)")
  return()
endif()
message(STATUS "CUDA runtime: CUDA ${CUDAToolkit_VERSION}, NCCL ${NCCL_VERSION}, "
               "architectures ${CMAKE_CUDA_ARCHITECTURES}")
set(MPCC_HAVE_CUDA ON)

# Warnings for our .cu files: nvcc's own (-Werror all-warnings) and the host compiler's.
set(MPCC_CUDA_WARN -Xcompiler=-Wall,-Wextra)
if(MPCC_WERROR)
  list(APPEND MPCC_CUDA_WARN -Werror=all-warnings -Xcompiler=-Werror)
endif()

# `mpcc --target cuda -o train` builds trainers with this nvcc against this tree's mprt_cuda
# (codegen/build.c).
get_filename_component(MPCC_NCCL_LIB_DIR ${NCCL_LIBRARY} DIRECTORY)
set_property(SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/codegen/build.c APPEND PROPERTY COMPILE_DEFINITIONS
             "MPCC_NVCC=\"${CMAKE_CUDA_COMPILER}\""
             "MPCC_CUDA_LIB_DIR=\"${CMAKE_BINARY_DIR}/runtime/cuda\""
             "MPCC_NCCL_LIB_DIR=\"${MPCC_NCCL_LIB_DIR}\"")
