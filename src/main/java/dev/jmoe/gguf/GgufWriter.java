package dev.jmoe.gguf;

/** Writes GGUF version 3 files: metadata, tensor infos, aligned tensor data. */
public final class GgufWriter {
}
