using System.Text;

namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// Turns generated tokens into text as they arrive. A token may end in the middle of a UTF-8 character (byte-level
/// BPE splits emoji and CJK across tokens); the incomplete bytes wait for the next token, so every call returns only
/// complete characters. Invalid sequences come out as U+FFFD.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly Tokenizer tokenizer;
    private readonly bool renderSpecial;
    private readonly System.Text.Decoder utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] buffer = new char[64];
    private bool atStart = true;

    internal StreamingDecoder(Tokenizer tokenizer, bool renderSpecial)
    {
        this.tokenizer = tokenizer;
        this.renderSpecial = renderSpecial;
    }

    /// <summary>Decodes one token; returns the characters it completes (possibly none).</summary>
    public string Append(int token)
    {
        var piece = Piece(token);
        EnsureCapacity(piece.Length + 4);
        int n = utf8.GetChars(piece, buffer, flush: false);
        return n == 0 ? string.Empty : new string(buffer, 0, n);
    }

    /// <summary>Allocation-free form: writes the completed characters to <paramref name="destination"/>
    /// (at least piece length + 4 chars; 64 always suffices for real vocabularies) and returns how many.</summary>
    public int Append(int token, Span<char> destination)
    {
        var piece = Piece(token);
        return utf8.GetChars(piece, destination, flush: false);
    }

    /// <summary>Ends the stream: pending bytes of an unfinished character come out as U+FFFD.</summary>
    public string Flush()
    {
        EnsureCapacity(8);
        int n = utf8.GetChars(ReadOnlySpan<byte>.Empty, buffer, flush: true);
        atStart = true;
        return n == 0 ? string.Empty : new string(buffer, 0, n);
    }

    public void Reset()
    {
        utf8.Reset();
        atStart = true;
    }

    private ReadOnlySpan<byte> Piece(int token)
    {
        if (atStart && tokenizer.AddBos && token == tokenizer.Bos)
        {
            return default; // the BOS the model added is not part of the text
        }
        var piece = tokenizer.PieceBytes(token, renderSpecial);
        if (atStart)
        {
            atStart = false;
            if (tokenizer.AddSpacePrefix && piece.Length > 0 && piece[0] == (byte)' ')
            {
                piece = piece[1..]; // SentencePiece's added "▁" before the first word
            }
        }
        return piece;
    }

    private void EnsureCapacity(int n)
    {
        if (buffer.Length < n)
        {
            buffer = new char[Math.Max(n, buffer.Length * 2)];
        }
    }
}
