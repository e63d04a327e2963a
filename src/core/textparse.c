/* textparse.c - see textparse.h. Calendar arithmetic follows the well-known
 * days-from-civil construction (eras of 400 years), valid for any year. */
#include "textparse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db_pool.h"
#include "error.h"

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)

int64_t dbp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void dbp_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly `count` digits at *p. */
static int digits(const char **p, const char *end, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (*p >= end || (*p)[0] < '0' || (*p)[0] > '9')
            return 0;
        v = v * 10 + (*(*p)++ - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : days[m - 1];
}

static int date_part(const char **p, const char *end, int64_t *days)
{
    int y, m, d;
    if (!digits(p, end, 4, &y) || *p >= end || *(*p)++ != '-' || !digits(p, end, 2, &m) ||
        *p >= end || *(*p)++ != '-' || !digits(p, end, 2, &d))
        return 0;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return 0;
    *days = dbp_days_from_civil(y, (unsigned)m, (unsigned)d);
    return 1;
}

static int time_part(const char **p, const char *end, int64_t *us)
{
    int h, mi, sec = 0;
    if (!digits(p, end, 2, &h) || *p >= end || *(*p)++ != ':' || !digits(p, end, 2, &mi))
        return 0;
    int64_t frac = 0;
    if (*p < end && **p == ':') {
        (*p)++;
        if (!digits(p, end, 2, &sec))
            return 0;
        if (*p < end && **p == '.') {
            (*p)++;
            int n = 0;
            while (*p < end && **p >= '0' && **p <= '9') {
                if (n == 9)
                    return 0; /* beyond nanoseconds: not a time */
                if (n < 6)
                    frac = frac * 10 + (**p - '0');
                else if (**p != '0')
                    return 0; /* below a microsecond: would be lost */
                n++;
                (*p)++;
            }
            if (n == 0)
                return 0;
            for (; n < 6; n++)
                frac *= 10;
        }
    }
    if (h > 23 || mi > 59 || sec > 59)
        return 0;
    *us = ((int64_t)h * 3600 + mi * 60 + sec) * US_PER_SEC + frac;
    return 1;
}

int dbp_parse_date(const char *s, size_t n, int32_t *days)
{
    const char *p = s, *end = s + n;
    int64_t d;
    if (!date_part(&p, end, &d) || p != end)
        return DBP_E_DATA;
    *days = (int32_t)d;
    return DBP_OK;
}

int dbp_parse_time(const char *s, size_t n, int64_t *us)
{
    const char *p = s, *end = s + n;
    return time_part(&p, end, us) && p == end ? DBP_OK : DBP_E_DATA;
}

int dbp_parse_timestamp(const char *s, size_t n, int64_t *us)
{
    const char *p = s, *end = s + n;
    int64_t days, tod = 0;
    if (!date_part(&p, end, &days))
        return DBP_E_DATA;
    if (p < end && (*p == ' ' || *p == 'T')) {
        p++;
        if (!time_part(&p, end, &tod))
            return DBP_E_DATA;
    }
    int64_t offset_us = 0;
    if (p < end && *p == 'Z') {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (!digits(&p, end, 2, &oh))
            return DBP_E_DATA;
        if (p < end && *p == ':') {
            p++;
            if (!digits(&p, end, 2, &om))
                return DBP_E_DATA; /* "+05:" needs its minutes */
        } else if (p < end && !digits(&p, end, 2, &om)) {
            return DBP_E_DATA;
        }
        if (oh > 23 || om > 59)
            return DBP_E_DATA;
        offset_us = sign * ((int64_t)oh * 3600 + om * 60) * US_PER_SEC;
    }
    if (p != end)
        return DBP_E_DATA;
    *us = days * US_PER_DAY + tod - offset_us;
    return DBP_OK;
}

int dbp_parse_decimal(const char *s, size_t n, int precision, int scale, __int128 *out)
{
    const char *p = s, *end = s + n;
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    /* The value is D * 10^exponent, D being the significant digits. */
    char digits[80];
    int n_digits = 0, seen_digit = 0, exponent = 0, in_fraction = 0;
    for (; p < end; p++) {
        if (*p == '.' && !in_fraction) {
            in_fraction = 1;
            continue;
        }
        if (*p < '0' || *p > '9')
            break;
        seen_digit = 1;
        if (in_fraction)
            exponent--;
        if (n_digits == 0 && *p == '0')
            continue; /* leading zeros are not significant */
        if (n_digits == (int)sizeof digits)
            return DBP_E_DATA; /* far beyond 38 digits */
        digits[n_digits++] = *p;
    }
    if (!seen_digit)
        return DBP_E_DATA;
    if (p < end && (*p == 'e' || *p == 'E')) { /* SQLite writes 1.0e-05 */
        p++;
        int sign = 1, e = 0, e_digits = 0;
        if (p < end && (*p == '+' || *p == '-'))
            sign = *p++ == '-' ? -1 : 1;
        for (; p < end && *p >= '0' && *p <= '9' && e < 10000; p++, e_digits++)
            e = e * 10 + (*p - '0');
        if (!e_digits)
            return DBP_E_DATA;
        exponent += sign * e;
    }
    if (p != end)
        return DBP_E_DATA;
    while (n_digits > 0 && digits[n_digits - 1] == '0') {
        n_digits--;
        exponent++;
    }
    int shift = exponent + scale; /* unscaled = D * 10^shift */
    if (n_digits == 0) {
        *out = 0;
        return DBP_OK;
    }
    if (shift < 0 || n_digits + shift > precision)
        return DBP_E_DATA; /* would round, or needs more than `precision` digits */
    __int128 v = 0;
    for (int i = 0; i < n_digits; i++)
        v = v * 10 + (digits[i] - '0');
    for (int i = 0; i < shift; i++)
        v *= 10;
    *out = negative ? -v : v;
    return DBP_OK;
}

int dbp_format_date(int64_t days, char *buf, size_t size)
{
    int64_t y;
    unsigned m, d;
    dbp_civil_from_days(days, &y, &m, &d);
    return snprintf(buf, size, "%04lld-%02u-%02u", (long long)y, m, d);
}

int dbp_format_time(int64_t us, char *buf, size_t size)
{
    int64_t secs = us / US_PER_SEC, frac = us % US_PER_SEC;
    int n = snprintf(buf, size, "%02lld:%02lld:%02lld", (long long)(secs / 3600),
                     (long long)(secs / 60 % 60), (long long)(secs % 60));
    if (frac && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ".%06lld", (long long)frac);
    return n;
}

int dbp_format_timestamp(int64_t us, char *buf, size_t size)
{
    int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY;
    if (rem < 0) {
        rem += US_PER_DAY;
        days--;
    }
    int n = dbp_format_date(days, buf, size);
    if (n > 0 && (size_t)n + 1 < size) {
        buf[n++] = ' ';
        n += dbp_format_time(rem, buf + n, size - (size_t)n);
    }
    return n;
}

int dbp_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII runs dominate: skip them eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t chunk;
            memcpy(&chunk, s + i, 8);
            if (chunk & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

int dbp_format_double(double d, char *buf, size_t size)
{
    int n = 0;
    for (int digits = 15; digits <= 17; digits++) {
        n = snprintf(buf, size, "%.*g", digits, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return n;
}

int dbp_parse_setting_int(const char *engine, const char *key, const char *value, long lo,
                          long hi, long *out, dbp_error *err)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < lo || v > hi)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "%s setting %s must be an integer in [%ld, %ld], got '%s'", engine,
                             key, lo, hi, value);
    *out = v;
    return DBP_OK;
}

int dbp_text_mentions(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(text + i, needle, n) == 0)
            return 1;
    return 0;
}
