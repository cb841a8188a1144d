/*
 * A disassembler plugin for HotSpot's -XX:+PrintAssembly that hands each code range to binutils' objdump.
 * The JDK ships none; bench/asm builds this file into the cache and puts it on the JVM's library path.
 * HotSpot calls decode_instructions_virtual once per range of generated code; the instructions are written
 * through its printf callback. Per-instruction events (which interleave HotSpot's comments with the code) are not
 * produced: the listing is objdump's, whole, which is what counting a loop's instructions needs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef void* (*event_callback)(void* stream, const char* event, void* arg);
typedef int (*printf_callback)(void* stream, const char* format, ...);

void* decode_instructions_virtual(uintptr_t start_va, uintptr_t end_va, unsigned char* buffer, uintptr_t length,
                                  event_callback events, void* event_stream, printf_callback out, void* out_stream,
                                  const char* options, int newline) {
  (void) end_va; (void) events; (void) event_stream; (void) options; (void) newline;
  if (out == NULL) {
    out = (printf_callback) fprintf;
    if (out_stream == NULL) out_stream = stdout;
  }
  char path[] = "/tmp/jmoe-hsdis-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return NULL;
  FILE* code = fdopen(fd, "wb");
  if (code == NULL) { close(fd); unlink(path); return NULL; }
  size_t written = fwrite(buffer, 1, length, code);
  fclose(code);
  if (written != length) { unlink(path); return NULL; }
  char command[256];
  /* objdump's first seven lines are its header; the addresses are the code's own */
  snprintf(command, sizeof command,
           "objdump -D -b binary -m i386:x86-64 -M intel --adjust-vma=0x%llx %s | tail -n +8",
           (unsigned long long) start_va, path);
  FILE* listing = popen(command, "r");
  if (listing != NULL) {
    char line[512];
    while (fgets(line, sizeof line, listing) != NULL) out(out_stream, "%s", line);
    pclose(listing);
  }
  unlink(path);
  return NULL;
}
