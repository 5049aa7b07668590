/* accel plugin: readahead — find sequential streams among all clients'
 * reads and fetch the window ahead of each into the cache.
 */

#ifndef ACCEL_READAHEAD_H
#define ACCEL_READAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "readahead-map.h"

/* Streams followed at once; the least recently continued one makes room
 * for a new one.
 */
#define READAHEAD_STREAMS 8

/* One GET for a worker: count bytes at offset. */
struct readahead_request {
  uint64_t offset;
  uint32_t count;
};

/* A sequential stream: reads that start near the furthest end it has
 * reached.
 */
struct readahead_stream {
  uint64_t next_offset; /* the furthest end reached */
  uint64_t queued_until; /* readahead already asked up to here */
  unsigned streak; /* reads that continued it */
  uint64_t last_use; /* a tick of clock below; 0: slot unused */
  /* Streams in the file map's walk (readahead_detect_walk) only: */
  uint64_t file_end; /* the end of the latest file it read */
  bool walk; /* it has moved on from one file to a later one */
};

/* What readahead_detect remembers between reads: plain data (all
 * zeros to start), so that it can be driven without threads or an
 * image.
 */
struct readahead_streams {
  struct readahead_stream slot[READAHEAD_STREAMS];
  uint64_t clock;
};

/* What readahead_detect needs to know of the image and settings. */
struct readahead_geometry {
  uint64_t window; /* readahead= */
  uint32_t chunk_size;
  uint64_t image_size;
};

/* Note a client's read of count bytes at offset in s, and say what to
 * fetch ahead of the stream it continues: up to room requests in out,
 * chunk-aligned, in order.  Returns how many (0: nothing to do yet).
 * The pure part of readahead_note_read, for tests.
 */
size_t
readahead_detect (struct readahead_streams *s,
                  const struct readahead_geometry *g, uint64_t offset,
                  uint32_t count, struct readahead_request *out, size_t room);

/* The same along the manifest's file map (readahead-map.h): the read
 * at image offset is noted at its place in the walk, and what is asked
 * follows the file's extents, up to the file's end, or, once the stream
 * has moved on to a later file, over the files after it.  *in_file is
 * false (and nothing is asked) if no file holds offset.  s holds walk
 * offsets: not the same streams as readahead_detect's.
 */
size_t readahead_detect_walk (struct readahead_streams *s,
                              const struct readahead_geometry *g,
                              const struct readahead_map *map, uint64_t offset,
                              uint32_t count, struct readahead_request *out,
                              size_t room, bool *in_file);

/* A read outside every file of map (readahead_detect_walk's !in_file):
 * noted in s, streams of such reads in image offsets, each read close
 * ahead of the one before (CLOSE_READS); from the third, the window
 * beyond the stream, one chunk at first and doubling with each read up
 * to readahead=, less the chunks that hold only file data
 * (readahead_map_meta_ranges).  So a file system's metadata read in
 * order (inode tables as `find` stats file after file) is read ahead,
 * a mount's few probes fetch little, and the window never runs into
 * file data nobody may read.  s holds image offsets, apart from
 * readahead_detect_walk's streams.
 */
size_t readahead_detect_meta (struct readahead_streams *s,
                              const struct readahead_geometry *g,
                              const struct readahead_map *map, uint64_t offset,
                              uint32_t count, struct readahead_request *out,
                              size_t room);

/* What readahead_detect_read remembers between reads: streams of reads
 * in files (in image offsets without a file map) and of reads outside
 * files.  Plain data, all zeros to start.
 */
struct readahead_state {
  struct readahead_streams streams, meta;
};

/* One read as readahead_note_read notes it: readahead_detect without
 * map; with map, readahead_detect_walk, or readahead_detect_meta for a
 * read outside every file (*in_file false then, true otherwise).  For
 * the plugin and for tests/bench/readahead-replay, which must decide
 * alike.
 */
size_t readahead_detect_read (struct readahead_state *s,
                              const struct readahead_geometry *g,
                              const struct readahead_map *map, uint64_t offset,
                              uint32_t count, struct readahead_request *out,
                              size_t room, bool *in_file);

/* Start `threads` workers (from .after_fork, at most 16) that keep
 * `window` bytes ahead of each sequential stream; window 0 or threads
 * 0: no readahead.  With img's manifest, its file map is loaded first
 * (readahead-map.h) and streams follow it.  0, or -1 (reported).
 */
int readahead_start (struct image *img, unsigned threads, uint64_t window);

/* Stop and join the workers (from .cleanup). */
void readahead_stop (void);

/* A client's read, before it is served: queue what lies ahead of its
 * stream, so that those GETs start along with the read's own.
 */
void readahead_note_read (uint64_t offset, uint32_t count);

#endif /* ACCEL_READAHEAD_H */
