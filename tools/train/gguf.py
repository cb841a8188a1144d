"""Minimal GGUF (v3) reader and writer, written for jmoe's training tools.

Only what the tools need: metadata of every value type, tensors in F32 / F16 / Q8_0.
Layout facts (from the GGUF spec): little-endian; header = magic "GGUF", u32 version,
u64 tensor count, u64 metadata count; then key/value pairs; then tensor infos
(name, n_dims, dims listed first-dimension-fastest, ggml type, offset relative to the
data section); then padding to `general.alignment` and the tensor data, each tensor
starting at an aligned offset.
"""
import struct
import numpy as np

# GGUF metadata value types
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
_SCALAR = {T_U8: '<B', T_I8: '<b', T_U16: '<H', T_I16: '<h', T_U32: '<I', T_I32: '<i',
           T_F32: '<f', T_BOOL: '<?', T_U64: '<Q', T_I64: '<q', T_F64: '<d'}

# ggml tensor types used here, with (block size, bytes per block)
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
_TYPE_BLOCK = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_Q8_0: (32, 34)}
FILE_TYPE = {'f32': 0, 'f16': 1, 'q8_0': 7}  # general.file_type (llama_ftype) values


class _Reader:
    def __init__(self, buf):
        self.b, self.p = buf, 0

    def unpack(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.unpack('<Q')
        s = bytes(self.b[self.p:self.p + n]).decode('utf-8')
        self.p += n
        return s

    def value(self, t):
        if t == T_STR:
            return self.string()
        if t == T_ARR:
            et, n = self.unpack('<I'), self.unpack('<Q')
            if et in _SCALAR and et != T_BOOL:
                dt = np.dtype(_SCALAR[et])
                a = np.frombuffer(self.b, dtype=dt, count=n, offset=self.p)
                self.p += n * dt.itemsize
                return a.tolist()
            return [self.value(et) for _ in range(n)]
        return self.unpack(_SCALAR[t])


def read_gguf(path, load_tensors=True):
    """Returns (metadata dict, {name: (ggml_type, dims, numpy array or None)})."""
    with open(path, 'rb') as f:
        buf = f.read()
    r = _Reader(memoryview(buf))
    assert bytes(buf[:4]) == b'GGUF', 'not a GGUF file'
    r.p = 4
    version = r.unpack('<I')
    assert version in (2, 3), version
    n_t, n_kv = r.unpack('<Q'), r.unpack('<Q')
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.unpack('<I'))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.unpack('<I')
        dims = [r.unpack('<Q') for _ in range(nd)]
        infos.append((name, dims, r.unpack('<I'), r.unpack('<Q')))
    align = meta.get('general.alignment', 32)
    data0 = (r.p + align - 1) // align * align
    tensors = {}
    for name, dims, t, off in infos:
        arr = None
        if load_tensors:
            n = int(np.prod(dims))
            shape = tuple(reversed(dims))  # numpy order: last GGUF dim is slowest
            if t == GGML_F32:
                arr = np.frombuffer(buf, np.float32, n, data0 + off).reshape(shape)
            elif t == GGML_F16:
                arr = np.frombuffer(buf, np.float16, n, data0 + off).reshape(shape)
            elif t == GGML_Q8_0:
                raw = np.frombuffer(buf, np.uint8, n // 32 * 34, data0 + off).reshape(-1, 34)
                d = raw[:, :2].copy().view(np.float16).astype(np.float32)
                q = raw[:, 2:].copy().view(np.int8).astype(np.float32)
                arr = (d * q).reshape(shape)
        tensors[name] = (t, dims, arr)
    return meta, tensors


def quantize_q8_0(x):
    """Q8_0: blocks of 32 along rows; d = amax/127 stored as f16; q = round(x/d) as int8.
    Returns the raw bytes (34 per block). Rounding is half away from zero like ggml's roundf."""
    x = np.asarray(x, np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1, keepdims=True)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    v = x * inv
    q = (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int8)
    out = np.empty((x.shape[0], 34), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


class GGUFWriter:
    """Collects metadata and tensors, then writes a GGUF v3 file in one go."""

    def __init__(self, alignment=32):
        self.kv = []          # (key, type, value, elem type for arrays)
        self.tensors = []     # (name, dims, ggml type, bytes)
        self.alignment = alignment

    def add(self, key, vtype, value, etype=None):
        self.kv.append((key, vtype, value, etype))

    def add_str(self, k, v): self.add(k, T_STR, v)
    def add_u32(self, k, v): self.add(k, T_U32, int(v))
    def add_f32(self, k, v): self.add(k, T_F32, float(v))
    def add_bool(self, k, v): self.add(k, T_BOOL, bool(v))
    def add_arr(self, k, etype, v): self.add(k, T_ARR, list(v), etype)

    def add_tensor(self, name, arr, ggml_type):
        """arr: numpy array in PyTorch/numpy order; GGUF dims are its shape reversed."""
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        dims = list(reversed(arr.shape))
        if ggml_type == GGML_F32:
            data = arr.tobytes()
        elif ggml_type == GGML_F16:
            data = arr.astype(np.float16).tobytes()
        elif ggml_type == GGML_Q8_0:
            assert dims[0] % 32 == 0, (name, dims)
            data = quantize_q8_0(arr)
        else:
            raise ValueError(ggml_type)
        self.tensors.append((name, dims, ggml_type, data))

    @staticmethod
    def _str(s):
        b = s.encode('utf-8')
        return struct.pack('<Q', len(b)) + b

    def _val(self, t, v, et):
        if t == T_STR:
            return self._str(v)
        if t == T_ARR:
            out = [struct.pack('<IQ', et, len(v))]
            if et == T_STR:
                out += [self._str(s) for s in v]
            else:
                out.append(np.asarray(v, dtype=np.dtype(_SCALAR[et])).tobytes())
            return b''.join(out)
        return struct.pack(_SCALAR[t], v)

    def write(self, path):
        a = self.alignment
        pad = lambda n: (a - n % a) % a
        head = [b'GGUF', struct.pack('<IQQ', 3, len(self.tensors), len(self.kv))]
        for k, t, v, et in self.kv:
            head += [self._str(k), struct.pack('<I', t), self._val(t, v, et)]
        off = 0
        offsets = []
        for name, dims, t, data in self.tensors:
            offsets.append(off)
            off += len(data) + pad(len(data))
        for (name, dims, t, data), o in zip(self.tensors, offsets):
            head += [self._str(name), struct.pack('<I', len(dims)),
                     struct.pack('<%dQ' % len(dims), *dims), struct.pack('<IQ', t, o)]
        head = b''.join(head)
        with open(path, 'wb') as f:
            f.write(head + b'\0' * pad(len(head)))
            for name, dims, t, data in self.tensors:
                f.write(data + b'\0' * pad(len(data)))
