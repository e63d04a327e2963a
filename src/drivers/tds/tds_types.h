/* tds_types.h - SQL Server values as FreeTDS db-lib hands them over, to
 * Arrow builders, and parameter values to db-lib's RPC form.
 *
 * db-lib reports a column's type (dbcoltype) in its own codes: character
 * types of every kind arrive as SYBCHAR/SYBTEXT already converted to the
 * client charset (UTF-8), binary ones as SYBBINARY/SYBIMAGE, the
 * date/time types of SQL Server 2008 as DBDATETIMEALL structs (100 ns
 * ticks, days since 1900-01-01, and for datetimeoffset the UTC instant plus
 * the offset). The decoders never trust lengths and never round, except
 * where docs/mssql.md says so (datetime's 1/300 s ticks). */
#ifndef DBP_TDS_TYPES_H
#define DBP_TDS_TYPES_H

#include <stddef.h>
#include <sybfront.h>
#include <sybdb.h>

#include "column.h"
#include "params.h"

/* db-lib type codes sybdb.h leaves out (they are FreeTDS's tds.h values). */
#ifndef SYBUNIQUE
#define SYBUNIQUE 36
#endif
#ifndef SYBVARIANT
#define SYBVARIANT 98
#endif
#ifndef SYBMSUDT
#define SYBMSUDT 240
#endif
#ifndef SYBMSXML
#define SYBMSXML 241
#endif
#define TDS_XSYBVARBINARY 165
#define TDS_XSYBVARCHAR 167
#define TDS_XSYBBINARY 173
#define TDS_XSYBCHAR 175
#define TDS_XSYBNVARCHAR 231
#define TDS_XSYBNCHAR 239

/* Days from 1900-01-01 (SQL Server's day 0) to 1970-01-01. */
#define TDS_DAYS_1900_TO_1970 25567
#define TDS_US_PER_DAY 86400000000LL

typedef enum tds_decoder {
    TDSD_UINT8,
    TDSD_INT16,
    TDSD_INT32,
    TDSD_INT64,
    TDSD_BIT,
    TDSD_REAL,
    TDSD_FLOAT,
    TDSD_DECIMAL,
    TDSD_MONEY,
    TDSD_MONEY4,
    TDSD_DATE,
    TDSD_TIME,
    TDSD_DATETIME,
    TDSD_DATETIME4,
    TDSD_DATETIME2,
    TDSD_DATETIMEOFFSET,
    TDSD_GUID,
    TDSD_TEXT,
    TDSD_BINARY,
} tds_decoder;

typedef struct tds_column_plan {
    int dbtype;          /* dbcoltype() */
    tds_decoder decoder;
    dbp_type type;       /* the Arrow type the column builds */
    const char *sql_name; /* "datetime2", ... for messages */
} tds_column_plan;

/* Plans a result column from db-lib's type code and type info (precision
 * and scale of decimals). DBP_E_DATA for types with no exact Arrow form
 * (sql_variant), with a message naming `column` and the CAST to use. */
int tds_plan_column(int dbtype, const DBTYPEINFO *info, const char *column, tds_column_plan *out,
                    dbp_error *err);

/* Appends one value; `data` NULL is SQL NULL. `proc` is used for db-lib's
 * decimal-to-text conversion. DBP_E_DATA names `column` (a datetime2(7)
 * value with a non-zero 100 ns digit, invalid UTF-8, a decimal that does
 * not fit); DBP_E_PROTOCOL for a value of the wrong size or outside its
 * type's range. On failure `out` is unchanged. */
int tds_decode_value(DBPROCESS *proc, const tds_column_plan *plan, const BYTE *data, DBINT len,
                     dbp_column *out, const char *column, dbp_error *err);

/* A parameter in the form dbrpcparam() takes, with the storage its value
 * points into (so a tds_param must not move between binding and
 * dbrpcsend). */
typedef struct tds_param {
    int type;          /* db-lib type code */
    DBINT datalen;     /* bytes; 0 is NULL; -1 for fixed-size types */
    const BYTE *value; /* NULL for NULL */
    char decl[24];     /* the declared SQL type, e.g. "decimal(10,2)" */
    /* db-lib sends a zero-length value as NULL: an empty string or binary
     * goes as NULL and this literal ("N''" or "0x") is assigned to the
     * parameter at the start of the statement. */
    const char *empty_literal;
    union {
        DBBIGINT i8;
        DBFLT8 f8;
        DBBIT bit;
        DBNUMERIC num;
        DBDATETIMEALL dt;
    } store;
} tds_param;

/* Binds one cell. A NULL is sent as nvarchar(max) unless `null_binary` (other
 * rows of an execute_many bind bytes in that position: SQL Server converts
 * NULL nvarchar to most types, but not to varbinary). `position` (1-based)
 * names the parameter in messages. DBP_E_DATA for values SQL Server cannot
 * take exactly (NaN, decimals beyond 38 digits, strings over 2 GiB). */
int tds_param_bind(DBPROCESS *proc, const dbp_cell *cell, int null_binary, size_t position,
                   tds_param *out, dbp_error *err);

#endif
