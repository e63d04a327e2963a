/* column_internal.h - what column.c (the builders) and column_export.c
 * (the Arrow C data export) share. */
#ifndef DBP_COLUMN_INTERNAL_H
#define DBP_COLUMN_INTERNAL_H

#include <stdalign.h>
#include <stdint.h>

#include "column.h"

/* An aligned stand-in for buffers of zero length. */
extern alignas(64) const uint8_t col_empty_buffer[64];

/* A LIST needs an element type, and lists do not nest. */
int col_valid_type(dbp_type type);
/* STRING and BINARY: stored as views with data buffers. */
int col_is_view_type(dbp_type_id id);
void col_buffer_free(dbp_buffer *buf);
void col_free_data_buffers(dbp_buffer *buffers, size_t count);
/* Drops the values, keeping name and type. */
void col_clear_values(dbp_column *col);

#endif
