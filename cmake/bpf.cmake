# BPF build support.
#
# vmlinux.h is generated at build time from the running kernel's BTF
# (/sys/kernel/btf/vmlinux) instead of being committed: CO-RE programs only
# need *a* vmlinux.h whose types name the fields they touch, and tickprobe
# can only run where BTF exists, so every machine that can run it can also
# produce the header. This keeps a 3 MB generated file out of the history.
# Set TICKPROBE_VMLINUX_H to use a pre-generated header instead.

find_program(CLANG_BPF NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
find_program(LLVM_STRIP NAMES llvm-strip-14 llvm-strip REQUIRED)

set(BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf_gen)
file(MAKE_DIRECTORY ${BPF_GEN_DIR})

set(TICKPROBE_VMLINUX_H "" CACHE FILEPATH "pre-generated vmlinux.h (default: dump from /sys/kernel/btf/vmlinux)")
if(TICKPROBE_VMLINUX_H)
  configure_file(${TICKPROBE_VMLINUX_H} ${BPF_GEN_DIR}/vmlinux.h COPYONLY)
  add_custom_target(vmlinux_h)
else()
  if(NOT EXISTS /sys/kernel/btf/vmlinux)
    message(FATAL_ERROR "no kernel BTF at /sys/kernel/btf/vmlinux\n"
                        "hint: tickprobe needs CONFIG_DEBUG_INFO_BTF=y, or pass -DTICKPROBE_VMLINUX_H=path")
  endif()
  add_custom_command(
    OUTPUT ${BPF_GEN_DIR}/vmlinux.h
    COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${BPF_GEN_DIR}/vmlinux.h.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${BPF_GEN_DIR}/vmlinux.h.tmp ${BPF_GEN_DIR}/vmlinux.h
    COMMENT "Generating vmlinux.h from kernel BTF"
    VERBATIM)
  add_custom_target(vmlinux_h DEPENDS ${BPF_GEN_DIR}/vmlinux.h)
endif()

# add_bpf_skeleton(NAME SOURCE [DEPENDS headers...])
# Compiles SOURCE (a .bpf.c) into NAME.bpf.o and generates NAME.skel.h with
# bpftool. Creates an INTERFACE target NAME_skel; linking it puts the skeleton
# header on the include path (#include "NAME.skel.h").
function(add_bpf_skeleton NAME SOURCE)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  get_filename_component(src ${SOURCE} ABSOLUTE)
  set(obj ${BPF_GEN_DIR}/${NAME}.bpf.o)
  set(skel ${BPF_GEN_DIR}/${NAME}.skel.h)
  file(GLOB bpf_headers ${PROJECT_SOURCE_DIR}/bpf/include/*.h ${PROJECT_SOURCE_DIR}/bpf/lib/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG_BPF} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Wno-unused-function
            -I${BPF_GEN_DIR} -I${PROJECT_SOURCE_DIR}/bpf/include -I${PROJECT_SOURCE_DIR}/bpf/lib
            -I/usr/include/x86_64-linux-gnu
            -c ${src} -o ${obj}
    # The skeleton embeds the object in every binary, and libbpf reads it at
    # each open: DWARF is 80% of it and unused (BTF and .BTF.ext line info
    # stay), as libbpf-tools does.
    COMMAND ${LLVM_STRIP} -g ${obj}
    DEPENDS ${src} ${bpf_headers} ${ARG_DEPENDS} vmlinux_h ${BPF_GEN_DIR}/vmlinux.h
    COMMENT "BPF ${NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${NAME}.skel.h"
    VERBATIM)
  add_custom_target(${NAME}_skel_gen DEPENDS ${skel})
  add_library(${NAME}_skel INTERFACE)
  add_dependencies(${NAME}_skel ${NAME}_skel_gen)
  target_include_directories(${NAME}_skel INTERFACE ${BPF_GEN_DIR} ${PROJECT_SOURCE_DIR})
  target_link_libraries(${NAME}_skel INTERFACE PkgConfig::LIBBPF PkgConfig::LIBELF ZLIB::ZLIB)
endfunction()
