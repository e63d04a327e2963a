/* textparse.h - exact conversions between text and the integer forms of
 * dates, times, timestamps and decimals, for engines that hand values over
 * as text. Parsers return DBP_OK or DBP_E_DATA and never round. */
#ifndef DBP_TEXTPARSE_H
#define DBP_TEXTPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "db_pool.h"

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t dbp_days_from_civil(int64_t y, unsigned m, unsigned d);
void dbp_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* "YYYY-MM-DD" */
int dbp_parse_date(const char *s, size_t n, int32_t *days);
/* "HH:MM[:SS[.f{1,9}]]"; digits past microseconds must be zero */
int dbp_parse_time(const char *s, size_t n, int64_t *us);
/* "YYYY-MM-DD[( |T)HH:MM[:SS[.f]]][Z|(+|-)HH[:MM]]"; an offset is applied,
 * giving UTC. */
int dbp_parse_timestamp(const char *s, size_t n, int64_t *us);
/* "[+-]digits[.digits][e[+-]digits]" into an unscaled value with `scale`
 * fraction digits; fails if it needs more than `precision` digits or would
 * drop a non-zero digit. */
int dbp_parse_decimal(const char *s, size_t n, int precision, int scale, __int128 *out);

/* An engine setting that must be a whole number in [lo, hi]; a
 * DBP_E_CONFIG error names the engine, the setting and the value. */
int dbp_parse_setting_int(const char *engine, const char *key, const char *value, long lo,
                          long hi, long *out, dbp_error *err);

/* Canonical text forms; buffers of at least 40 bytes. Return the length. */
int dbp_format_date(int64_t days, char *buf, size_t size);
int dbp_format_time(int64_t us, char *buf, size_t size);
int dbp_format_timestamp(int64_t us, char *buf, size_t size);

/* The shortest decimal text of a finite double that reads back as exactly
 * the same double (at most 17 significant digits). */
int dbp_format_double(double d, char *buf, size_t size);

/* 1 when `needle` occurs in the `len` bytes of `text`, ignoring ASCII case
 * (drivers looking for keywords in SQL). */
int dbp_text_mentions(const char *text, size_t len, const char *needle);

/* 1 when the bytes are well-formed UTF-8. */
int dbp_utf8_valid(const unsigned char *s, size_t n);

#endif
