using System;
using System.Text;

namespace Peft.Generators;

/// <summary>Writes C# source with four-space indentation.</summary>
internal sealed class CodeWriter
{
    private readonly StringBuilder _text = new();
    private int _depth;

    public CodeWriter Line(string line = "")
    {
        if (line.Length > 0)
        {
            _text.Append(' ', _depth * 4).Append(line);
        }

        _text.Append('\n');
        return this;
    }

    /// <summary>Writes <paramref name="header"/> and an opening brace; disposing the result closes it.</summary>
    public Block Open(string header, string closing = "}")
    {
        Line(header).Line("{");
        _depth++;
        return new Block(this, closing);
    }

    public override string ToString() => _text.ToString();

    internal readonly struct Block(CodeWriter writer, string closing) : IDisposable
    {
        public void Dispose()
        {
            writer._depth--;
            writer.Line(closing);
        }
    }
}
