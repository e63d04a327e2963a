/* test_textparse.c - exact text conversions (textparse.h): dates, times,
 * timestamps, decimals, their canonical formats and UTF-8 validation. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "db_pool.h"
#include "error.h"
#include "textparse.h"

#define US INT64_C(1000000)
#define DAY_US (INT64_C(86400) * US)

/* ---- helpers ------------------------------------------------------------------ */

static int parse_date(const char *s, int32_t *days) { return dbp_parse_date(s, strlen(s), days); }
static int parse_time(const char *s, int64_t *us) { return dbp_parse_time(s, strlen(s), us); }
static int parse_ts(const char *s, int64_t *us) { return dbp_parse_timestamp(s, strlen(s), us); }
static int parse_dec(const char *s, int p, int sc, __int128 *v)
{
    return dbp_parse_decimal(s, strlen(s), p, sc, v);
}

static void check_date(const char *s, int32_t expected)
{
    int32_t days = INT32_MIN;
    int rc = parse_date(s, &days);
    if (rc != DBP_OK)
        fprintf(stderr, "  date '%s' rejected\n", s);
    CHECK_EQ_INT(rc, DBP_OK);
    CHECK_EQ_INT(days, expected);
}

static void check_bad_date(const char *s)
{
    int32_t days = 12345;
    int rc = parse_date(s, &days);
    if (rc != DBP_E_DATA)
        fprintf(stderr, "  date '%s' accepted\n", s);
    CHECK_EQ_INT(rc, DBP_E_DATA);
    CHECK_EQ_INT(days, 12345); /* untouched on failure */
}

static void check_time(const char *s, int64_t expected)
{
    int64_t us = -1;
    int rc = parse_time(s, &us);
    if (rc != DBP_OK)
        fprintf(stderr, "  time '%s' rejected\n", s);
    CHECK_EQ_INT(rc, DBP_OK);
    CHECK_EQ_INT(us, expected);
}

static void check_bad_time(const char *s)
{
    int64_t us = -1;
    int rc = parse_time(s, &us);
    if (rc != DBP_E_DATA)
        fprintf(stderr, "  time '%s' accepted\n", s);
    CHECK_EQ_INT(rc, DBP_E_DATA);
}

static void check_ts(const char *s, int64_t expected)
{
    int64_t us = -1;
    int rc = parse_ts(s, &us);
    if (rc != DBP_OK)
        fprintf(stderr, "  timestamp '%s' rejected\n", s);
    CHECK_EQ_INT(rc, DBP_OK);
    CHECK_EQ_INT(us, expected);
}

static void check_bad_ts(const char *s)
{
    int64_t us = -1;
    int rc = parse_ts(s, &us);
    if (rc != DBP_E_DATA)
        fprintf(stderr, "  timestamp '%s' accepted\n", s);
    CHECK_EQ_INT(rc, DBP_E_DATA);
}

static void check_dec(const char *s, int p, int sc, __int128 expected)
{
    __int128 v = -42;
    int rc = parse_dec(s, p, sc, &v);
    if (rc != DBP_OK)
        fprintf(stderr, "  decimal '%s' (%d,%d) rejected\n", s, p, sc);
    CHECK_EQ_INT(rc, DBP_OK);
    CHECK(v == expected);
}

static void check_bad_dec(const char *s, int p, int sc)
{
    __int128 v = 0;
    int rc = parse_dec(s, p, sc, &v);
    if (rc != DBP_E_DATA)
        fprintf(stderr, "  decimal '%s' (%d,%d) accepted\n", s, p, sc);
    CHECK_EQ_INT(rc, DBP_E_DATA);
}

static __int128 pow10_i128(int n)
{
    __int128 v = 1;
    while (n-- > 0)
        v *= 10;
    return v;
}

static int utf8(const char *s, size_t n) { return dbp_utf8_valid((const unsigned char *)s, n); }

/* Validity of a string literal's bytes (embedded NULs included). */
#define UTF8(lit) utf8((lit), sizeof(lit) - 1)

/* ---- dates ------------------------------------------------------------------- */

static void test_dates_across_the_whole_range(void)
{
    check_date("1970-01-01", 0);
    check_date("1969-12-31", -1);
    check_date("0001-01-01", -719162);
    check_date("9999-12-31", 2932896);
    check_date("1900-03-01", -25508);
}

static void test_leap_days(void)
{
    check_date("2000-02-29", 11016); /* divisible by 400 */
    check_date("2024-02-29", 19782); /* divisible by 4 */
    check_bad_date("1900-02-29");    /* divisible by 100 only */
    check_bad_date("2100-02-29");
    check_bad_date("2023-02-29");
    check_bad_date("2024-02-30");
}

static void test_invalid_dates(void)
{
    static const char *const bad[] = {
        "",           "2020",        "2020-01",     "2020-13-01",  "2020-00-10",
        "2020-01-00", "2020-04-31",  "2020-06-31",  "2020-01-32",  "2020-1-01",
        "2020-01-1",  "20200101",    "2020/01/01",  " 2020-01-01", "2020-01-01 ",
        "2020-01-0a", "abcd-01-01",  "2020-01-011", "+2020-01-01", "2020-01-01T00:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check_bad_date(bad[i]);
}

/* Only the first n bytes count: the buffer need not be NUL-terminated. */
static void test_parsers_respect_length(void)
{
    int32_t days;
    CHECK_EQ_INT(dbp_parse_date("2020-01-01XYZ", 10, &days), DBP_OK);
    CHECK_EQ_INT(days, 18262);
    CHECK_EQ_INT(dbp_parse_date("2020-01-01", 9, &days), DBP_E_DATA);
    int64_t us;
    CHECK_EQ_INT(dbp_parse_time("12:30:00.5xx", 10, &us), DBP_OK);
    CHECK_EQ_INT(us, (12 * 3600 + 30 * 60) * US + 500000);
    CHECK_EQ_INT(dbp_parse_timestamp("1970-01-01 00:00:01", 16, &us), DBP_OK);
    CHECK_EQ_INT(us, 0);
    __int128 v;
    CHECK_EQ_INT(dbp_parse_decimal("12.345", 4, 5, 2, &v), DBP_OK);
    CHECK(v == 1230);
}

/* ---- times ------------------------------------------------------------------- */

static void test_times(void)
{
    check_time("00:00", 0);
    check_time("00:00:00", 0);
    check_time("23:59", (23 * 3600 + 59 * 60) * US);
    check_time("23:59:59", (INT64_C(86400) - 1) * US);
    check_time("12:34:56", (12 * 3600 + 34 * 60 + 56) * US);
}

static void test_time_fractions_of_one_to_nine_digits(void)
{
    const int64_t base = (12 * 3600) * US;
    static const struct {
        const char *text;
        int64_t us;
    } ok[] = {
        {"12:00:00.1", 100000},        {"12:00:00.12", 120000},
        {"12:00:00.123", 123000},      {"12:00:00.1234", 123400},
        {"12:00:00.12345", 123450},    {"12:00:00.123456", 123456},
        {"12:00:00.1234560", 123456},  {"12:00:00.12345600", 123456},
        {"12:00:00.123456000", 123456}, {"12:00:00.000001", 1},
        {"12:00:00.999999", 999999},   {"12:00:00.000000000", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        check_time(ok[i].text, base + ok[i].us);
    /* A non-zero digit below a microsecond would be lost: refused. */
    check_bad_time("12:00:00.1234567");
    check_bad_time("12:00:00.12345601");
    check_bad_time("12:00:00.000000001");
    check_bad_time("12:00:00.999999999");
}

static void test_invalid_times(void)
{
    static const char *const bad[] = {
        "",         "12",       "1:00",        "12:0",      "12:00:",   "12:00:0",
        "12:00:00.", "24:00",   "24:00:00",    "12:60",     "12:00:60", "99:99",
        "12-00",    "12:00:00Z", "12:00:00 ",  " 12:00",    "12:00:00.1x", "ab:cd",
        "12:00.5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check_bad_time(bad[i]);
}

/* ---- timestamps ------------------------------------------------------------- */

static void test_timestamps_with_both_separators(void)
{
    check_ts("1970-01-01", 0);
    check_ts("1970-01-01 00:00:01", US);
    check_ts("1970-01-01T00:00:01", US);
    check_ts("1970-01-01 00:01", 60 * US);
    check_ts("1969-12-31 23:59:59.999999", -1);
    check_ts("2024-02-29 12:34:56.5", INT64_C(1709210096500000));
    check_ts("2024-02-29T12:34:56.500000000", INT64_C(1709210096500000));
    check_ts("0001-01-01 00:00:00", INT64_C(-62135596800000000));
    check_ts("9999-12-31T23:59:59.999999", INT64_C(253402300799999999));
}

static void test_timestamp_offsets_give_utc(void)
{
    const int64_t y2k = INT64_C(946684800000000);
    check_ts("2000-01-01T00:00:00Z", y2k);
    check_ts("2000-01-01 00:00Z", y2k);
    check_ts("2000-01-01T02:00:00+02:00", y2k);
    check_ts("1999-12-31T19:00:00-05:00", y2k);
    check_ts("2000-01-01T05:30:00+05:30", y2k);
    check_ts("2000-01-01T05:00:00+05", y2k);
    check_ts("1999-12-31T23:59:59.999999-00:00", y2k - 1);
    /* The offset moves the date too. */
    check_ts("2000-01-01T00:30:00+01:00", y2k - 30 * 60 * US);
    check_ts("2000-01-01T23:59:59+23:59", y2k + (23 * 3600 + 59 * 60 + 59) * US -
                                              (23 * 3600 + 59 * 60) * US);
    check_ts("2000-01-01Z", y2k); /* a date with an offset is midnight there */
}

static void test_invalid_timestamps(void)
{
    static const char *const bad[] = {
        "",
        "2000-01-01T",
        "2000-01-01 ",
        "2000-01-01X00:00",
        "2000-01-01T24:00",
        "2000-01-01T00:00:00.1234567",
        "2000-01-01T00:00+24:00",
        "2000-01-01T00:00+01:60",
        "2000-01-01T00:00+1",
        "2000-01-01T00:00+01:0",
        "2000-01-01T00:00Z+01:00",
        "2000-01-01T00:00ZZ",
        "2000-01-01T00:00:00 UTC",
        "2000-02-30T00:00",
        "2000-01-01T00:00:00+01:00x",
        "2000-01-01t00:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check_bad_ts(bad[i]);
}

/* ---- decimals --------------------------------------------------------------- */

static void test_decimals(void)
{
    check_dec("123.45", 5, 2, 12345);
    check_dec("-123.45", 5, 2, -12345);
    check_dec("+1.5", 3, 1, 15);
    check_dec("1.5", 5, 3, 1500); /* scaled up */
    check_dec("12", 4, 2, 1200);
    check_dec("0", 1, 0, 0);
    check_dec("-0", 1, 0, 0);
    check_dec("-0.00", 3, 2, 0);
    check_dec("0.001", 3, 3, 1);
    check_dec("1.230", 3, 2, 123); /* trailing zeros past the scale are exact */
    check_dec("1.2300000000000000000000000000000000000000000", 3, 2, 123);
}

static void test_decimal_leading_zeros_are_not_significant(void)
{
    check_dec("007", 1, 0, 7);
    check_dec("-000123.4500", 6, 2, -12345);
    check_dec("0000000000000000000000000000000000000000000000001", 1, 0, 1);
    check_dec("0.05", 2, 2, 5);
}

static void test_decimal_precision_and_scale_limits(void)
{
    check_bad_dec("1234", 3, 0);    /* too many digits */
    check_bad_dec("123.4", 4, 2);   /* 3 integer digits, room for 2 */
    check_dec("12.34", 4, 2, 1234);
    check_bad_dec("1", 2, 2);       /* no integer digits allowed */
    check_dec("0.99", 2, 2, 99);
    check_bad_dec("-100", 2, 0);
    check_dec("-99", 2, 0, -99);
}

static void test_decimal_rounding_is_refused(void)
{
    check_bad_dec("1.235", 3, 2);
    check_bad_dec("1.2301", 10, 2);
    check_bad_dec("0.5", 5, 0);
    check_bad_dec("-0.0000000001", 10, 9);
}

static void test_decimal_38_digits(void)
{
    const char *nines = "99999999999999999999999999999999999999"; /* 38 */
    CHECK_EQ_INT(strlen(nines), 38);
    check_dec(nines, 38, 0, pow10_i128(38) - 1);
    char negative[64];
    snprintf(negative, sizeof negative, "-%s", nines);
    check_dec(negative, 38, 0, -(pow10_i128(38) - 1));
    check_bad_dec("100000000000000000000000000000000000000", 38, 0); /* 39 digits */
    char fraction[64];
    snprintf(fraction, sizeof fraction, "0.%s", nines);
    check_dec(fraction, 38, 38, pow10_i128(38) - 1);
    check_dec("1234567890123456789.0123456789012345678", 38, 19,
              (__int128)1234567890123456789 * pow10_i128(19) + (__int128)123456789012345678);
    check_bad_dec("12345678901234567890.0123456789012345678", 38, 19);
}

/* SQLite renders large and small REALs with an exponent ("1.0e-05"). */
static void test_decimal_exponents(void)
{
    check_dec("1e5", 10, 2, 10000000);
    check_dec("1.5e0", 10, 2, 150);
    check_dec("1.0e-05", 10, 7, 100);
    check_dec("1.25E+2", 5, 0, 125);
    check_dec("-2.5e-1", 3, 2, -25);
    check_dec("123e-2", 3, 2, 123);
    check_dec("0e99", 3, 2, 0);
    check_bad_dec("1e-3", 3, 2);  /* 0.001 needs scale 3 */
    check_bad_dec("1e3", 3, 0);   /* 1000 needs 4 digits */
    check_bad_dec("1.0e-05", 10, 2);
    check_bad_dec("1e9999", 38, 0);
    check_bad_dec("1e99999999999", 38, 0);
    check_bad_dec("1e-99999999999", 38, 38);
}

static void test_invalid_decimals(void)
{
    static const char *const bad[] = {"",    "-",    "+",   ".",     "1,5", " 1",  "1 ",
                                      "--1", "+-1",  "0x10", "1.2.3", "abc", "1-",  "NaN",
                                      "inf", "e5",   "1e",   "1e+",   "1e-", "1e5x", "1.e",
                                      "1e5.0", "1ee5", "-e5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check_bad_dec(bad[i], 10, 2);
}

/* ---- formats --------------------------------------------------------------------- */

static void check_format_date(int64_t days, const char *expected)
{
    char buf[40];
    int n = dbp_format_date(days, buf, sizeof buf);
    CHECK_EQ_INT(n, strlen(expected));
    CHECK(strcmp(buf, expected) == 0);
}

static void check_format_time(int64_t us, const char *expected)
{
    char buf[40];
    int n = dbp_format_time(us, buf, sizeof buf);
    CHECK_EQ_INT(n, strlen(expected));
    CHECK(strcmp(buf, expected) == 0);
}

static void check_format_ts(int64_t us, const char *expected)
{
    char buf[40];
    int n = dbp_format_timestamp(us, buf, sizeof buf);
    CHECK_EQ_INT(n, strlen(expected));
    if (strcmp(buf, expected) != 0)
        fprintf(stderr, "  formatted '%s', expected '%s'\n", buf, expected);
    CHECK(strcmp(buf, expected) == 0);
}

static void test_canonical_formats(void)
{
    check_format_date(0, "1970-01-01");
    check_format_date(-1, "1969-12-31");
    check_format_date(-719162, "0001-01-01");
    check_format_date(2932896, "9999-12-31");
    check_format_date(11016, "2000-02-29");
    check_format_time(0, "00:00:00");
    check_format_time(1, "00:00:00.000001");
    check_format_time(45296 * US, "12:34:56");
    check_format_time(45296 * US + 500000, "12:34:56.500000");
    check_format_time(DAY_US - 1, "23:59:59.999999");
    check_format_ts(0, "1970-01-01 00:00:00");
    check_format_ts(-1, "1969-12-31 23:59:59.999999");
    check_format_ts(-DAY_US, "1969-12-31 00:00:00");
    check_format_ts(INT64_C(-62135596800000000), "0001-01-01 00:00:00");
    check_format_ts(INT64_C(253402300799999999), "9999-12-31 23:59:59.999999");
}

/* days <-> civil for every day in 0001..9999, and text round trips for a
 * spread of them. */
static void test_calendar_round_trips(void)
{
    int64_t prev_y = 0;
    unsigned prev_m = 12, prev_d = 31;
    int bad = 0;
    for (int64_t days = -719162; days <= 2932896; days++) {
        int64_t y;
        unsigned m, d;
        dbp_civil_from_days(days, &y, &m, &d);
        if (dbp_days_from_civil(y, m, d) != days)
            bad++;
        /* consecutive: the next day after the previous one */
        int next = (y == prev_y && m == prev_m && d == prev_d + 1) ||
                   (y == prev_y && m == prev_m + 1 && d == 1) ||
                   (y == prev_y + 1 && m == 1 && d == 1 && prev_m == 12 && prev_d == 31);
        if (!next)
            bad++;
        prev_y = y;
        prev_m = m;
        prev_d = d;
        if (days % 97 == 0) {
            char buf[40];
            int32_t back;
            int n = dbp_format_date(days, buf, sizeof buf);
            if (dbp_parse_date(buf, (size_t)n, &back) != DBP_OK || back != days)
                bad++;
            int64_t us = days * DAY_US + (days % 86400) * 997 * 1000 % DAY_US;
            if (us < days * DAY_US)
                us += DAY_US;
            int64_t ts_back;
            n = dbp_format_timestamp(us, buf, sizeof buf);
            if (dbp_parse_timestamp(buf, (size_t)n, &ts_back) != DBP_OK || ts_back != us)
                bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(prev_y, 9999);

    for (int64_t us = 0; us < DAY_US; us += 7777777 + us / 3) {
        char buf[40];
        int64_t back = -1;
        int n = dbp_format_time(us, buf, sizeof buf);
        CHECK_EQ_INT(dbp_parse_time(buf, (size_t)n, &back), DBP_OK);
        CHECK_EQ_INT(back, us);
    }
}

/* ---- UTF-8 --------------------------------------------------------------------------- */

static void test_utf8_valid_text(void)
{
    CHECK(UTF8(""));
    CHECK(UTF8("plain ascii, longer than one eight-byte chunk"));
    CHECK(UTF8("\xC3\xA9"));             /* é */
    CHECK(UTF8("\xE2\x82\xAC"));         /* € */
    CHECK(UTF8("\xF0\x9F\x98\x80"));     /* 😀 */
    CHECK(UTF8("\xC2\x80"));             /* U+0080, smallest two-byte */
    CHECK(UTF8("\xDF\xBF"));             /* U+07FF */
    CHECK(UTF8("\xE0\xA0\x80"));         /* U+0800, smallest three-byte */
    CHECK(UTF8("\xED\x9F\xBF"));         /* U+D7FF, below the surrogates */
    CHECK(UTF8("\xEE\x80\x80"));         /* U+E000, above them */
    CHECK(UTF8("\xEF\xBF\xBF"));         /* U+FFFF */
    CHECK(UTF8("\xF0\x90\x80\x80"));     /* U+10000, smallest four-byte */
    CHECK(UTF8("\xF4\x8F\xBF\xBF"));     /* U+10FFFF, the last code point */
    CHECK(UTF8("a\0b"));                 /* NUL is a character */
    /* Multibyte characters right at and across eight-byte chunk boundaries. */
    CHECK(UTF8("abcdefg\xC3\xA9"));
    CHECK(UTF8("abcdefgh\xE2\x82\xAC" "abcdefgh\xF0\x9F\x98\x80"));
    CHECK(UTF8("gr\xC3\xBC\xC3\x9F" "e aus K\xC3\xB6ln und \xE6\x97\xA5\xE6\x9C\xAC"));
}

static void test_utf8_overlong_forms_rejected(void)
{
    CHECK(!UTF8("\xC0\x80"));
    CHECK(!UTF8("\xC1\xBF"));
    CHECK(!UTF8("\xE0\x80\x80"));
    CHECK(!UTF8("\xE0\x9F\xBF"));
    CHECK(!UTF8("\xF0\x80\x80\x80"));
    CHECK(!UTF8("\xF0\x8F\xBF\xBF"));
}

static void test_utf8_surrogates_and_out_of_range_rejected(void)
{
    CHECK(!UTF8("\xED\xA0\x80")); /* U+D800 */
    CHECK(!UTF8("\xED\xBF\xBF")); /* U+DFFF */
    CHECK(!UTF8("\xF4\x90\x80\x80")); /* U+110000 */
    CHECK(!UTF8("\xF5\x80\x80\x80"));
    CHECK(!UTF8("\xF7\xBF\xBF\xBF"));
    CHECK(!UTF8("\xF8\x88\x80\x80\x80"));
    CHECK(!UTF8("\xFE"));
    CHECK(!UTF8("\xFF"));
}

static void test_utf8_truncated_and_stray_bytes_rejected(void)
{
    CHECK(!UTF8("\xC3"));
    CHECK(!UTF8("\xE2\x82"));
    CHECK(!UTF8("\xF0\x9F\x98"));
    CHECK(!UTF8("abcdefgh\xC3")); /* at the end after a full chunk */
    CHECK(!UTF8("\xE2\x82" "A")); /* continuation replaced by ASCII */
    CHECK(!UTF8("\xC3\xC3\xA9"));
    CHECK(!UTF8("\x80"));         /* a lone continuation byte */
    CHECK(!UTF8("abc\xBF" "def"));
    /* Only the first n bytes count: a valid prefix of a longer invalid text. */
    CHECK(utf8("ab\xC3\xA9\xFF", 4));
    CHECK(!utf8("\xC3\xA9", 1));
}

/* ---- text outside the documented grammar ------------------------------------------- */

/* textparse.h documents "HH:MM[:SS[.f{1,9}]]" and "[Z|(+|-)HH[:MM]]"; the
 * parsers accept more fraction digits and an offset's colon without minutes. */
static void test_text_outside_the_documented_grammar_is_rejected(void)
{
    check_bad_time("12:00:00.0000000000");           /* ten fraction digits */
    check_bad_ts("2000-01-01T00:00:00.0000000000");
    check_bad_ts("2000-01-01T00:00+05:");            /* a colon with no minutes */
}

/* An error text cut to fit its buffer never ends inside a UTF-8 sequence,
 * and a NUL byte in SQL is refused before anything runs. */
static void test_error_text_cut_on_a_character_boundary(void)
{
    char long_text[3000];
    for (size_t odd = 0; odd < 4; odd++) {
        memset(long_text, 'x', odd);
        size_t n = odd;
        while (n + 2 < sizeof long_text - 1) { /* "é" over and over */
            long_text[n++] = (char)0xC3;
            long_text[n++] = (char)0xA9;
        }
        long_text[n] = '\0';
        dbp_error err;
        dbp_error_set(&err, DBP_E_SERVER, 0, NULL, "%s", long_text);
        size_t len = strlen(err.message);
        CHECK(len < sizeof err.message);
        CHECK(dbp_utf8_valid((const unsigned char *)err.message, len));
    }
    char four[] = "ab\xF0\x9F\x98"; /* a 4-byte sequence missing its last byte */
    dbp_utf8_trim(four);
    CHECK(strcmp(four, "ab") == 0);
    char whole[] = "ab\xC3\xA9";
    dbp_utf8_trim(whole);
    CHECK(strcmp(whole, "ab\xC3\xA9") == 0);

    dbp_request *req = NULL;
    dbp_error err;
    CHECK_EQ_INT(dbp_request_new(&req, DBP_OP_EXECUTE, "SELECT 1\0; DROP", 16, NULL, &err),
                 DBP_E_MISUSE);
    CHECK(req == NULL && strstr(err.message, "NUL byte at offset 8") != NULL);
}

int main(void)
{
    RUN(test_error_text_cut_on_a_character_boundary);
    RUN(test_dates_across_the_whole_range);
    RUN(test_leap_days);
    RUN(test_invalid_dates);
    RUN(test_parsers_respect_length);
    RUN(test_times);
    RUN(test_time_fractions_of_one_to_nine_digits);
    RUN(test_invalid_times);
    RUN(test_timestamps_with_both_separators);
    RUN(test_timestamp_offsets_give_utc);
    RUN(test_invalid_timestamps);
    RUN(test_decimals);
    RUN(test_decimal_leading_zeros_are_not_significant);
    RUN(test_decimal_precision_and_scale_limits);
    RUN(test_decimal_rounding_is_refused);
    RUN(test_decimal_38_digits);
    RUN(test_decimal_exponents);
    RUN(test_invalid_decimals);
    RUN(test_canonical_formats);
    RUN(test_calendar_round_trips);
    RUN(test_utf8_valid_text);
    RUN(test_utf8_overlong_forms_rejected);
    RUN(test_utf8_surrogates_and_out_of_range_rejected);
    RUN(test_utf8_truncated_and_stray_bytes_rejected);
    /* Regression: once accepted text outside the grammar. */
    RUN(test_text_outside_the_documented_grammar_is_rejected);
    return check_exit();
}
