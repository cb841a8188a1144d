package dev.jmoe.model;

import java.util.Arrays;

/**
 * The rows of one forward step over several sequences ({@link Model#forward(InferenceState, Batch, float[])}): each
 * sequence adds a run of tokens that continue it from its current position (a prompt chunk, or the one token it just
 * sampled), and may ask for the logits of its last row. Rows are kept sequence by sequence in the order added. A batch
 * is reused step after step ({@link #clear}); a sequence may appear once per step.
 */
public final class Batch {
    private InferenceState[] sequences = new InferenceState[4];
    private int[] start = new int[4], count = new int[4];
    private boolean[] logits = new boolean[4];
    private int nSeq;
    private int[] tokens = new int[16], rowSequence = new int[16], rowPosition = new int[16];
    private int nRows;

    /** Empties the batch for the next step. */
    public void clear() {
        Arrays.fill(sequences, 0, nSeq, null);
        nSeq = 0;
        nRows = 0;
    }

    /**
     * Adds {@code tokens[off .. off+n)} of {@code seq}, at its positions {@code seq.position() ..}; with {@code wantLogits}
     * the step writes the logits of the last of them. Returns the sequence's index in this batch (its logits row).
     */
    public int add(InferenceState seq, int[] tokens, int off, int n, boolean wantLogits) {
        if (seq == null) throw new IllegalArgumentException("sequence is null");
        if (n < 1) throw new IllegalArgumentException("a sequence adds at least one token to a step, got " + n);
        if (off < 0 || off + n > tokens.length) throw new IllegalArgumentException("tokens [" + off + ", " + (off + n) + ") outside an array of " + tokens.length);
        for (int i = 0; i < nSeq; i++) {
            if (sequences[i] == seq) throw new IllegalArgumentException("a sequence appears once per step");
        }
        int pos = seq.position();
        if ((long) pos + n > seq.kv().capacity()) {
            throw new IllegalStateException("context is full: " + pos + " + " + n + " tokens exceed the sequence's " + seq.kv().capacity() + " positions");
        }
        if (nSeq == sequences.length) {
            int c = nSeq * 2;
            sequences = Arrays.copyOf(sequences, c);
            start = Arrays.copyOf(start, c);
            count = Arrays.copyOf(count, c);
            logits = Arrays.copyOf(logits, c);
        }
        if (nRows + n > this.tokens.length) {
            int c = Math.max(this.tokens.length * 2, nRows + n);
            this.tokens = Arrays.copyOf(this.tokens, c);
            rowSequence = Arrays.copyOf(rowSequence, c);
            rowPosition = Arrays.copyOf(rowPosition, c);
        }
        sequences[nSeq] = seq;
        start[nSeq] = nRows;
        count[nSeq] = n;
        logits[nSeq] = wantLogits;
        for (int i = 0; i < n; i++) {
            this.tokens[nRows + i] = tokens[off + i];
            rowSequence[nRows + i] = nSeq;
            rowPosition[nRows + i] = pos + i;
        }
        nRows += n;
        return nSeq++;
    }

    /** Rows (tokens) in this step. */
    public int rows() { return nRows; }

    /** Sequences in this step. */
    public int sequences() { return nSeq; }

    public InferenceState sequence(int i) { return sequences[i]; }

    /** The first row of sequence i. */
    public int start(int i) { return start[i]; }

    /** Rows of sequence i. */
    public int count(int i) { return count[i]; }

    public boolean wantsLogits(int i) { return logits[i]; }

    /** The sequence (index in this batch) row r belongs to. */
    public int sequenceOf(int r) { return rowSequence[r]; }

    /** The position row r is at in its sequence. */
    public int position(int r) { return rowPosition[r]; }

    public int token(int r) { return tokens[r]; }

    /** The rows' tokens, row by row (the array is the batch's: read only, and only {@link #rows()} of it). */
    public int[] tokens() { return tokens; }

    /**
     * Whether every sequence adds one row: a decode step, where the routing of each row is one token's and the expert
     * runtime may substitute, balance and predict as for a single decode token.
     */
    public boolean decodeStep() {
        return nRows == nSeq;
    }
}
