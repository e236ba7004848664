# The template compiles for the smallest part and links nothing. A copy for
# a real board sets its part, and once it has a start-up file and a linker
# script, PF_BOARD_LD (and optionally PF_BOARD_ELF, default updater-<folder>):
#   set(PF_BOARD_CPU cortex-m3)
#   set(PF_BOARD_LD ${CMAKE_CURRENT_LIST_DIR}/my-board.ld)
#   set(PF_BOARD_DEFINITIONS PF_UPDATER_ARENA=65536)   # smaller static buffers
set(PF_BOARD_CPU cortex-m0plus)
