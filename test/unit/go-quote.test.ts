// goQuote (cli/format.ts): Go's strconv.Quote, which docker's ps applies to a container's command.
// The expected strings are what Go 1.22's strconv.Quote returns for the same input.
import { describe, expect, it } from 'vitest';
import { goQuote } from '../../cli/format.js';

describe('goQuote', () => {
  it('quotes as Go does: " and \\ escaped, printable text kept', () => {
    expect(goQuote('sleep 3600')).toBe('"sleep 3600"');
    expect(goQuote('sh -c "echo hi"')).toBe('"sh -c \\"echo hi\\""');
    expect(goQuote('C:\\dir')).toBe('"C:\\\\dir"');
    expect(goQuote('')).toBe('""');
    expect(goQuote('héllo… 日本 🐳')).toBe('"héllo… 日本 🐳"');
  });

  it('writes what a terminal would act on as escapes, never as the bytes', () => {
    expect(goQuote('\x1b[31mred\x1b]0;title\x07')).toBe('"\\x1b[31mred\\x1b]0;title\\a"');
    expect(goQuote('a\tb\nc\rd\be\ff\vg\x00h\x7f')).toBe('"a\\tb\\nc\\rd\\be\\ff\\vg\\x00h\\x7f"');
    // Beyond ASCII, what is not a letter, mark, number, punctuation or symbol: C1 controls,
    // format characters, spaces other than U+0020, and a rune past the BMP.
    expect(goQuote('\u009b2J\u200b\u00a0\u2028\u{e0001}')).toBe('"\\u009b2J\\u200b\\u00a0\\u2028\\U000e0001"');
    // A lone surrogate (an invalid rune to Go) as U+FFFD's escape.
    expect(goQuote('x\ud800y')).toBe('"x\\ufffdy"');
  });
});
