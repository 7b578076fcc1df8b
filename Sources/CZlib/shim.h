/* The system zlib (Debian: zlib1g-dev), for inflating gzip/deflate gRPC messages that plugins want to read. */
#include <zlib.h>
