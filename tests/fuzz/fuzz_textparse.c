/* fuzz_textparse.c - libFuzzer harness for the text parsers of textparse.c:
 * dates, times, timestamps and decimals as SQLite's TEXT values (and
 * db-lib's decimal text) reach them, and whole-number settings.
 *
 * Input: the first byte picks the parser (and a decimal's precision and
 * scale), the rest is the text, not NUL-terminated, so reading past it is
 * a sanitizer report. Findings besides sanitizer reports: a parser that
 * accepts a value out of its range, or a value whose canonical text
 * (dbp_format_*) does not read back as the same value. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "textparse.h"

#define US_PER_DAY (INT64_C(86400) * 1000000)
/* 0000-01-01 and 9999-12-31: the years the canonical text has four digits for */
#define FIRST_DAY (-719528)
#define LAST_DAY 2932896

static void check_date(const char *s, size_t n)
{
    int32_t days, again;
    char text[64];
    if (dbp_parse_date(s, n, &days) != DBP_OK)
        return;
    if (days < FIRST_DAY || days > LAST_DAY)
        abort();
    int len = dbp_format_date(days, text, sizeof text);
    if (len != 10 || dbp_parse_date(text, (size_t)len, &again) != DBP_OK || again != days)
        abort();
}

static void check_time(const char *s, size_t n)
{
    int64_t us, again;
    char text[64];
    if (dbp_parse_time(s, n, &us) != DBP_OK)
        return;
    if (us < 0 || us >= US_PER_DAY)
        abort();
    int len = dbp_format_time(us, text, sizeof text);
    if (len <= 0 || dbp_parse_time(text, (size_t)len, &again) != DBP_OK || again != us)
        abort();
}

static void check_timestamp(const char *s, size_t n)
{
    int64_t us, again;
    char text[64];
    if (dbp_parse_timestamp(s, n, &us) != DBP_OK)
        return;
    /* an offset may move the instant one day past the years of the text */
    if (us < (FIRST_DAY - 1) * US_PER_DAY || us >= (LAST_DAY + 2) * US_PER_DAY)
        abort();
    if (us < FIRST_DAY * US_PER_DAY || us >= (LAST_DAY + 1) * US_PER_DAY)
        return; /* year -1 or 10000 in UTC: no four-digit text to read back */
    int len = dbp_format_timestamp(us, text, sizeof text);
    if (len <= 0 || dbp_parse_timestamp(text, (size_t)len, &again) != DBP_OK || again != us)
        abort();
}

/* Plain decimal text of `v` with `scale` fraction digits. */
static int decimal_text(__int128 v, int scale, char *out)
{
    char digits[48];
    int n = 0, k = 0;
    unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    while (n <= scale)
        digits[n++] = '0';
    if (v < 0)
        out[k++] = '-';
    for (int i = n - 1; i >= 0; i--) {
        out[k++] = digits[i];
        if (i == scale && scale > 0)
            out[k++] = '.';
    }
    return k;
}

static void check_decimal(const char *s, size_t n, int precision, int scale)
{
    __int128 v, again, limit = 1;
    char text[96];
    if (dbp_parse_decimal(s, n, precision, scale, &v) != DBP_OK)
        return;
    for (int i = 0; i < precision; i++)
        limit *= 10;
    if (v >= limit || v <= -limit)
        abort();
    int len = decimal_text(v, scale, text);
    if (dbp_parse_decimal(text, (size_t)len, precision, scale, &again) != DBP_OK || again != v)
        abort();
}

static void check_setting(const char *s, size_t n, uint8_t pick)
{
    static const long bounds[][2] = {{0, 100000}, {1, 65535}, {512, 32767}, {0, 86400000},
                                     {-5, 5}, {LONG_MIN, LONG_MAX}};
    const long *b = bounds[pick % (sizeof bounds / sizeof *bounds)];
    char *value = malloc(n + 1);
    if (!value)
        return;
    memcpy(value, s, n);
    value[n] = '\0';
    long v;
    dbp_error err;
    int rc = dbp_parse_setting_int("fuzz", "key", value, b[0], b[1], &v, &err);
    if (rc == DBP_OK ? v < b[0] || v > b[1] : rc != DBP_E_CONFIG)
        abort();
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t pick = data[0];
    /* a copy of exactly the text's size, so ASan sees any read past it */
    char *s = malloc(size - 1 ? size - 1 : 1);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    size_t n = size - 1;
    switch (pick % 6) {
    case 0:
        check_date(s, n);
        break;
    case 1:
        check_time(s, n);
        break;
    case 2:
        check_timestamp(s, n);
        break;
    case 3: /* the next two bytes: precision 1..38, scale 0..precision */
        if (n >= 2) {
            int precision = 1 + (uint8_t)s[0] % 38;
            check_decimal(s + 2, n - 2, precision, (uint8_t)s[1] % (precision + 1));
        }
        break;
    case 4:
        check_setting(s, n, pick / 6);
        break;
    default:
        dbp_utf8_valid((const unsigned char *)s, n);
        break;
    }
    free(s);
    return 0;
}
