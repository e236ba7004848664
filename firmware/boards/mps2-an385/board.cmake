# QEMU's mps2-an385 (Cortex-M3, CMSDK UART): the board the firmware tests run.
set(PF_BOARD_CPU cortex-m3)
set(PF_BOARD_LD ${CMAKE_CURRENT_LIST_DIR}/mps2-an385.ld)
set(PF_BOARD_ELF updater-mps2)
set(PF_BOARD_SOURCES ${PF_FW_SEMIHOST})
