/* reply.c - the reply trees of key-value engines (dbp_reply, db_pool.h). */
#include "alloc.h"
#include "db_pool.h"

void dbp_reply_free(dbp_reply *reply)
{
    if (!reply)
        return;
    for (size_t i = 0; i < reply->n; i++)
        dbp_reply_free(reply->element[i]);
    dbp_free(reply->element);
    dbp_free(reply->str);
    dbp_free(reply);
}
