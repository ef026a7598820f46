/*
 * ui_page.h -- the page for people that the HTTP face serves at GET /ui
 * (dynkv-http(7), PAGE): src/ui/index.html, compiled in as it is.
 *
 * The build makes src/ui_page.c from the HTML (src/Makefile.inc): one
 * string literal a line, nothing else changed, so the page needs no step
 * of its own and the node serves exactly the file in the tree.
 */
#ifndef DKV_UI_PAGE_H
#define DKV_UI_PAGE_H

#include <stddef.h>

/* The page's bytes, and how many (the terminating NUL not counted). */
extern const char dkv_ui_page[];
extern const size_t dkv_ui_page_len;

#endif /* DKV_UI_PAGE_H */
