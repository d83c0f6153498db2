#!/usr/bin/env python3
# Regenerates the hashes in tests/MoeLab.Engine.Tests/Kernels/GgmlGoldenTests.cs from llama.cpp's libggml-base
# (built from 81ff7abe at /tmp/llama.cpp/build): python3 tests/peers/ggml-golden-hashes.py
# Computes SHA-256 of ggml_quantize_chunk output and of to_float of it, for the GgmlGoldenTests input.
import ctypes, hashlib, struct, sys
lib = ctypes.CDLL("/tmp/llama.cpp/build/bin/libggml-base.so")
class Traits(ctypes.Structure):
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64), ("blck_size_interleave", ctypes.c_int64),
                ("type_size", ctypes.c_size_t), ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p), ("from_float_ref", ctypes.c_void_p)]
lib.ggml_get_type_traits.restype = ctypes.POINTER(Traits)
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
n = 256 * 64
x = (ctypes.c_float * n)()
s = 12345
for i in range(n):
    s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
    v = ((s >> 8) % 2001) - 1000
    f32 = lambda a: struct.unpack('f', struct.pack('f', a))[0]
    x[i] = f32(v * f32(0.001))
    x[i] = struct.unpack('f', struct.pack('f', x[i] * (1 + (i // 256) % 5)))[0]
for name, t in [("Q4_0", 2), ("Q4_1", 3), ("Q5_0", 6), ("Q5_1", 7), ("Q5_K", 13)]:
    tr = lib.ggml_get_type_traits(t).contents
    nbytes = n // tr.blck_size * tr.type_size
    q = (ctypes.c_uint8 * nbytes)()
    lib.ggml_quantize_chunk(t, x, q, 0, 1, n, None)
    back = (ctypes.c_float * n)()
    ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(tr.to_float)(q, back, n)
    print(name, hashlib.sha256(bytes(q)).hexdigest(), hashlib.sha256(bytes(back)).hexdigest())
