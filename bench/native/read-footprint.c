/*
 * Cross-check of `MoeLab.Benchmarks read-footprint` without .NET or MoeLab: one thread, O_DIRECT pread of a
 * qwen3-30b-a3b Q4_K slice's aligned size (888832 B) at random 4 KiB-aligned offsets of FILE, into N rotating
 * buffers (2 MiB-aligned slots, advised into huge pages and touched before timing), for N = 1 .. 256.
 * Prints MB/s per N, SECONDS each, ROUNDS times; with a 4th argument of 1 the buffer counts run in descending order
 * (to rule out drift within a round).
 *
 *     cc -O2 -o /tmp/read-footprint bench/native/read-footprint.c
 *     /tmp/read-footprint MODEL.gguf ROUNDS SECONDS [DESCENDING]
 *
 * Why it exists: on the development VM the rate of the same reads depends on how much memory they land in (fio
 * reuses its depth's few buffers; the engine reads into a slab the size of its budget). A C program showing the
 * same curve rules out the runtime and the store as its cause.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s FILE ROUNDS SECONDS [DESCENDING]\n", argv[0]);
        return 2;
    }

    const long bs = 888832, slot = 2L << 20;
    const int counts[] = {1, 2, 4, 8, 32, 72, 256}, nc = sizeof counts / sizeof counts[0];
    int rounds = atoi(argv[2]), descending = argc > 4 && atoi(argv[4]);
    double seconds = atof(argv[3]);
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }

    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 2 * bs) {
        fprintf(stderr, "%s: smaller than two reads\n", argv[1]);
        return 1;
    }

    size_t total = (size_t)counts[nc - 1] * slot;
    char *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }

    madvise(mem, total, MADV_HUGEPAGE);
    memset(mem, 1, total); /* no first-touch faults in the timing */
    srand(1);
    for (int r = 0; r < rounds; r++) {
        printf("round %d:", r);
        for (int k = 0; k < nc; k++) {
            int n = counts[descending ? nc - 1 - k : k];
            long bytes = 0;
            double t0 = now();
            for (long i = 0; now() - t0 < seconds; i++) {
                off_t off = ((off_t)rand() * 4096) % (size - bs) & ~(off_t)4095;
                ssize_t got = pread(fd, mem + (size_t)(i % n) * slot, bs, off);
                if (got <= 0) {
                    perror("pread");
                    return 1;
                }

                bytes += got;
            }

            printf(" %d buffers (%ld MiB) %.0f MB/s", n, n * slot >> 20, bytes / 1e6 / (now() - t0));
            fflush(stdout);
        }

        printf("\n");
    }

    return 0;
}
