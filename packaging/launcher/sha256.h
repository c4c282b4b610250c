/* SHA-256 (FIPS 180-4), the little the launcher needs: hash a few small buffers, print hex. */
#ifndef SWITCHBOARD_SHA256_H
#define SWITCHBOARD_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t state[8];
    uint64_t length;         /* bytes hashed so far */
    unsigned char block[64]; /* the partial block */
    size_t used;             /* bytes in `block` */
};

void sha256_init(struct sha256 *ctx);
void sha256_update(struct sha256 *ctx, const void *data, size_t size);
/* Finishes the hash and writes 64 lowercase hex digits and a NUL into `hex`. */
void sha256_hex(struct sha256 *ctx, char hex[65]);

#endif
