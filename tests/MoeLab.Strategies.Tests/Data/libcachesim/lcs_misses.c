// Replays an oracleGeneral trace through libCacheSim caches and prints exact miss counts.
// cachesim itself prints only a 4-decimal miss ratio and counts the first timestamp as warm-up,
// so MoeLab's equality test uses this driver (same create_cache() and cache->get() as cachesim).
// Usage: lcs_misses TRACE.oracleGeneral.bin ALGO SIZE[,SIZE...]
// Output: algo,cache_size,requests,misses,miss_bytes,outcome_fnv1a (FNV-1a 64 over one byte per request: 1 hit, 0 miss)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../include/libCacheSim/reader.h"
#include "../../include/libCacheSim/request.h"
#include "cache_init.h"

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s trace algo size[,size...]\n", argv[0]); return 2; }
  char *sizes = strdup(argv[3]);
  for (char *tok = strtok(sizes, ","); tok != NULL; tok = strtok(NULL, ",")) {
    uint64_t cache_size = strtoull(tok, NULL, 10);
    reader_t *reader = open_trace(argv[1], ORACLE_GENERAL_TRACE, NULL);
    cache_t *cache = create_cache(argv[1], argv[2], cache_size, NULL, false);
    request_t *req = new_request();
    uint64_t n = 0, misses = 0, miss_bytes = 0, fnv = 1469598103934665603ULL;
    while (read_one_req(reader, req) == 0) {
      bool hit = cache->get(cache, req);
      n++;
      if (!hit) { misses++; miss_bytes += req->obj_size; }
      fnv = (fnv ^ (hit ? 1u : 0u)) * 1099511628211ULL;
    }
    printf("%s,%lu,%lu,%lu,%lu,%016lx\n", argv[2], (unsigned long)cache_size, (unsigned long)n,
           (unsigned long)misses, (unsigned long)miss_bytes, (unsigned long)fnv);
    free_request(req);
    cache->cache_free(cache);
    close_reader(reader);
  }
  free(sizes);
  return 0;
}
