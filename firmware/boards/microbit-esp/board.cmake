# QEMU's microbit (nRF51822: Cortex-M0, 16 KiB RAM) with room for every
# driver including esp, which deflates on the fly: the second configuration
# of firmware/boards/microbit (same start-up, UART, clock and semihosting;
# only the buffers differ). updater-microbit.elf is the AVR + STM32 + agent
# configuration (8 KiB budget), this one the 16 KiB one. Figures: docs/MCU.md.
set(PF_BOARD_CPU cortex-m0plus)
set(PF_BOARD_LD ${CMAKE_CURRENT_LIST_DIR}/../microbit/nrf51822.ld)
set(PF_BOARD_ELF updater-microbit-esp)
file(GLOB PF_MICROBIT_C ${CMAKE_CURRENT_LIST_DIR}/../microbit/*.c)
set(PF_BOARD_SOURCES ${PF_MICROBIT_C} ${PF_FW_SEMIHOST})
set(PF_BOARD_DEFINITIONS
  PF_UPDATER_ARENA=0         # the image is read again from the card as the job needs it
  PF_UPDATER_SEGMENTS=8
  PF_UPDATER_CTX=9872        # driver state: esp 9,872 B (the largest; its sizes: firmware/CMakeLists.txt)
  PF_UPDATER_WORK=512        # 2 x write_max: STM32 256-byte blocks; esp writes 256-byte blocks
  PF_UPDATER_MAX_OPTIONS=4
  PF_UPDATER_OPTION_WORD=48
  PF_UPDATER_PATH=128
  PF_UPDATER_LINE=200
  PF_UPDATER_JOBLINE=256     # the -append job line
  PF_UPDATER_CHUNK=256       # bytes per semihosting read
  PF_MICROBIT_RING=256)
set(PF_BOARD_LINK_OPTIONS -Wl,--defsym=__stack_size=2688)
