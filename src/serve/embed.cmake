# Turns the upload page's files into C arrays (serve_page.c), so the daemon
# serves them from its own binary: no files to install, nothing from a CDN.
# cmake -DOUT=serve_page.c -DSRC=dir -P embed.cmake
set(out "/* made by src/serve/embed.cmake from src/serve/page/: do not edit */\n#include <stddef.h>\n")
foreach(pair "html;index.html" "js;app.js" "css;app.css")
  list(GET pair 0 sym)
  list(GET pair 1 file)
  file(READ "${SRC}/${file}" hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR bytes "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," arr "${hex}")
  string(REGEX REPLACE "((0x..,){24})" "\\1\n" arr "${arr}")
  string(APPEND out "const unsigned char serve_page_${sym}[] = {\n${arr}0};\n")
  string(APPEND out "const size_t serve_page_${sym}_len = ${bytes};\n")
endforeach()
file(WRITE "${OUT}.tmp" "${out}")
file(RENAME "${OUT}.tmp" "${OUT}")
