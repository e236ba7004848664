# QEMU's microbit (nRF51822: Cortex-M0, 256 KiB flash, 16 KiB RAM). Built with
# the Cortex-M0+ libraries: M0 and M0+ run the same ARMv6-M Thumb code.
set(PF_BOARD_CPU cortex-m0plus)
set(PF_BOARD_LD ${CMAKE_CURRENT_LIST_DIR}/nrf51822.ld)
set(PF_BOARD_ELF updater-microbit)
set(PF_BOARD_SOURCES ${PF_FW_SEMIHOST})
# 16 KiB of RAM: stack (nrf51822.ld) + these buffers + the updater's fixed ones
# must fit; the link fails if they do not. Figures in docs/MCU.md.
set(PF_BOARD_DEFINITIONS
  PF_UPDATER_ARENA=0         # no image arena: the image is read again from the card as the job needs it
  PF_UPDATER_SEGMENTS=8
  PF_UPDATER_CTX=1536        # driver state: avr 1152, stm32 1148, agent 1500 (stream build); esp (183848) does not fit
  PF_UPDATER_WORK=512        # 2 x write_max of AVR (128-byte pages) and STM32 (256-byte blocks)
  PF_UPDATER_MAX_OPTIONS=4   # driver options in one job ...
  PF_UPDATER_OPTION_WORD=48  # ... of up to 47 characters each ("name=value")
  PF_UPDATER_PATH=128        # image path, with its NUL
  PF_UPDATER_LINE=200        # console line while the job runs (progress from inside a driver: stack)
  PF_MICROBIT_RING=256)      # UART receive ring
