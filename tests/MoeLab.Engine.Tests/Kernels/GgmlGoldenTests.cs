using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

/// <summary>
/// Bit-identity with llama.cpp: the hashes are SHA-256 of the bytes ggml_quantize_chunk wrote for the input below
/// (and of ggml's to_float of those bytes), computed with libggml-base built from llama.cpp 81ff7abe by
/// tests/peers/ggml-golden-hashes.py. Equal
/// hashes mean our files are exactly what llama-quantize would write (without an importance matrix).
/// </summary>
public class GgmlGoldenTests
{
    // a 32-bit LCG the C side reproduces exactly; 64 super-blocks with five different magnitudes
    private static float[] Input()
    {
        var x = new float[256 * 64];
        uint s = 12345;
        for (int i = 0; i < x.Length; i++)
        {
            s = s * 1664525u + 1013904223u;
            int v = (int)((s >> 8) % 2001) - 1000;
            x[i] = v * 0.001f * (1 + (i / 256) % 5);
        }
        return x;
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, "89c3efc7cc25cab127105c25fb107c99723e6e3f4d765a0e3320ed9bb8c1781d", "965b09da41af0709862671490b195a553fd18d40c9064c5326c0e6644b9f0f1d")]
    [InlineData(GgmlType.Q4_0, "0e6e678589973ce5a86892f4f58df6b5507507c30579a865d85b524de8bec75d", "d1dc99b93dcb6b6bcfddd462cdb1fd284fc43733de594ae9857d73fb669ec176")]
    [InlineData(GgmlType.Q4_K, "4564932e33b9a9160385fba1482c6f8df0539020d0b26955c96952295d12d148", "4374bae0c3ddac390034e2e9e3e22af7dd95e0ee4fc22ea0f10333f707f45822")]
    [InlineData(GgmlType.Q6_K, "597ea54eec5eb159cd8529ff987ac138e2d411feb654b130335a6577ea5628d8", "805b006085db64c2334f7567f199013917472b28a72db5abe4f70e1cd592ee0d")]
    [InlineData(GgmlType.Q2_K, "b16a174c46f338c94eb46008f1b781fc1c7e4726bf7918822e3a3e32f366138f", "2f0c4f272e3ca846a956b6a05cf0418898a8044d55f9f9f0e199c43da923e6bb")]
    [InlineData(GgmlType.Q3_K, "f35b5b3df8a6218ab48a9651fdc0a7890dac447b0f53f0d0b21b23629fe4474f", "43d1978bcb1027e66abb44a1279a48f47f3c922cbecc45fbdf49afb479a9adb2")]
    [InlineData(GgmlType.Q4_1, "6a6f8f772d6fe5dd3a3b4ca6dda31c186a1bb93bef5d3249bcf7887e792017ab", "2554a7333dff0f97e09165be7089a9c52900e03a972d9da706f9a5f84969cb17")]
    [InlineData(GgmlType.Q5_0, "d618cbf0817c67b433ef87550f6c1cb34d8bcc2725539146b6baff93ee695d4b", "ae9562709ec1f78817ca240114632c80d2e0df864c89c6d486808b80fade9d74")]
    [InlineData(GgmlType.Q5_1, "9893c1a447baee7dcd6a39ca00c4422d6cac66190c68a6454afd8f33c87311da", "cd49c05fe74c9763f92aa4de1d52268eaefcfd63cfefc50153044134bf1225f1")]
    [InlineData(GgmlType.Q5_K, "0a35d8039937fb25192642338548351f0ef590f4d2bc5c19d0f5a7b6c2c33278", "fcd83a55edfe4e47a03577e3d68258142d7bc6597f390038c5d2dae120e43e71")]
    [InlineData(GgmlType.F16, "37b2aaecdc86dcd5f39f18e434fea1b7d2c801e76311959ee51155c14e24159c", "d15e442dea1403fe4939cda9927be14087c364c897c83a63f0945eb9f650b029")]
    [InlineData(GgmlType.BF16, "cba845fcdb0c810e5ad4939ddb8a71f285cd421d574a48d6dfe84e29ae521f16", "c46f045b79e6e7f0f0116a2ce942dde2221386efd2a7227e4fe12e1fe85bae53")]
    public void QuantizerAndDequantizerMatchGgmlBitForBit(GgmlType type, string quantizedSha256, string dequantizedSha256)
    {
        var x = Input();
        var q = new byte[GgmlTypeInfo.RowBytes(type, x.Length)];
        Quantizer.QuantizeRow(type, x, q);
        Assert.Equal(quantizedSha256, Convert.ToHexStringLower(SHA256.HashData(q)));
        var back = new float[x.Length];
        Dequantizer.DequantizeRow(type, q, back);
        Assert.Equal(dequantizedSha256, Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(back.AsSpan()))));
    }
}
