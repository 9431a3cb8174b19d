import { describe, expect, it } from 'vitest';
import { parseDockerfile, parseInstruction } from '../../src/build/parse.js';
import type { RawInstruction } from '../../src/build/instructions.js';
import { errorOf } from './build-errors.js';

const parse = (text: string) => parseDockerfile(text, 'Dockerfile');
/** The instructions of the first stage. */
const body = (text: string): RawInstruction[] => parse(text).stages[0]!.instructions;
const one = (text: string): RawInstruction => body(`FROM x\n${text}`)[0]!;


describe('parseDockerfile: structure', () => {
  it('stages, names, global ARGs and lines', () => {
    const df = parse('# a comment\nARG BASE=alpine\nARG V\n\nFROM $BASE AS build\nRUN make\n\nfrom   scratch\ncopy --from=build /out /\n');
    expect(df.file).toBe('Dockerfile');
    expect(df.escape).toBe('\\');
    expect(df.globalArgs.map((a) => [a.args, a.source.line])).toEqual([['BASE=alpine', 2], ['V', 3]]);
    expect(df.stages.map((s) => [s.index, s.name, s.from.args, s.from.source.line])).toEqual([
      [0, 'build', '$BASE AS build', 5],
      [1, undefined, 'scratch', 8],
    ]);
    expect(df.stages[0]!.instructions.map((i) => [i.keyword, i.source.line, i.source.text])).toEqual([['RUN', 6, 'RUN make']]);
    expect(df.stages[1]!.instructions[0]).toEqual({
      keyword: 'COPY',
      source: { file: 'Dockerfile', line: 9, text: 'copy --from=build /out /' },
      flags: { from: 'build' },
      args: '/out /',
      heredocs: [],
    });
    expect(df.stages[1]).not.toHaveProperty('name');
  });
  it('keywords are case-insensitive, upper-cased; AS too', () => {
    const df = parse('fRoM x as Base\nrun a\nEnV a=b');
    expect(df.stages[0]!.name).toBe('base');
    expect(body('fRoM x as Base\nrun a\nEnV a=b').map((i) => i.keyword)).toEqual(['RUN', 'ENV']);
  });
  it('an ARG after the first FROM belongs to the stage', () => {
    const df = parse('FROM x\nARG A\n');
    expect(df.globalArgs).toEqual([]);
    expect(df.stages[0]!.instructions[0]!.keyword).toBe('ARG');
  });
  it('every instruction docker knows is accepted; MAINTAINER too', () => {
    const all = ['ADD a /b', 'ARG a', 'CMD a', 'COPY a /b', 'ENTRYPOINT a', 'ENV a=b', 'EXPOSE 80', 'HEALTHCHECK NONE', 'LABEL a=b',
      'MAINTAINER me', 'ONBUILD RUN a', 'RUN a', 'SHELL ["sh"]', 'STOPSIGNAL TERM', 'USER a', 'VOLUME /a', 'WORKDIR /a'];
    expect(body(`FROM x\n${all.join('\n')}`).map((i) => i.keyword)).toEqual(all.map((a) => a.split(' ')[0]));
  });
  it('leading blanks before a keyword, CRLF line endings and a BOM are fine', () => {
    const df = parse('\ufeffFROM x\r\n   RUN a \\\r\n  b\r\n\tCMD c\r\n');
    expect(df.stages[0]!.instructions.map((i) => [i.keyword, i.args, i.source.line])).toEqual([['RUN', 'a   b', 2], ['CMD', 'c', 4]]);
  });
});

describe('parseDockerfile: errors name the line', () => {
  it.each([
    ['', 'Dockerfile:1: the Dockerfile has no instructions'],
    ['# only\n\n# comments\n', 'Dockerfile:1: the Dockerfile has no instructions'],
    ['ARG A\nARG B', 'Dockerfile:2: the Dockerfile has no FROM: nothing to build'],
    ['ARG A\nRUN x\nFROM y', 'Dockerfile:2: RUN must come after FROM: only ARG may come before the first FROM'],
    ['\nENV A=b\nFROM y', 'Dockerfile:2: ENV must come after FROM: only ARG may come before the first FROM'],
    ['FROM x\n\nFROBNICATE a', 'Dockerfile:3: unknown instruction: FROBNICATE'],
    ['FROM x\nfrobnicate', 'Dockerfile:2: unknown instruction: FROBNICATE'],
    ['FROM x AS a\nFROM y AS A', 'Dockerfile:2: duplicate stage name "a": stage names must be unique'],
    ['FROM x AS 1st', 'Dockerfile:1: invalid name for build stage: "1st", name can\'t start with a number or contain symbols'],
    ['FROM x AS a/b', 'Dockerfile:1: invalid name for build stage: "a/b", name can\'t start with a number or contain symbols'],
    ['FROM x y', 'Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])'],
    ['FROM x IS y', 'Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])'],
    ['FROM', 'Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])'],
    ['FROM x\nRUN \\\n  a \\\n  b\nCOPY a', 'Dockerfile:5: COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
    ['FROM x\nCMD ["a", {}]', 'Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only'],
    ['FROM x\nSHELL sh -c', 'Dockerfile:2: SHELL requires the arguments to be in JSON form'],
    ['FROM x\nENV A', 'Dockerfile:2: ENV must have two arguments (ENV name=value, or the legacy ENV name value)'],
    ['FROM x\nHEALTHCHECK --interval=x CMD a', 'Dockerfile:2: invalid duration "x" for --interval (examples: 30s, 1m30s, 500ms)'],
    ['FROM x\nONBUILD FROM y', "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"],
  ])('%j', (text, message) => {
    expect(errorOf(() => parse(text))).toBe(message);
  });
  it('a stage name matches ^[a-z][a-z0-9-_.]*$ after lower-casing', () => {
    expect(parse('FROM x AS My-Stage_1.0').stages[0]!.name).toBe('my-stage_1.0');
  });
});

describe('flags', () => {
  it('each instruction takes its own; values may be quoted or escaped', () => {
    expect(parse('FROM --platform=linux/arm64 y AS z').stages[0]!.from).toMatchObject({ flags: { platform: 'linux/arm64' }, args: 'y AS z' });
    expect(one('RUN --network=none true').flags).toEqual({ network: 'none' });
    expect(one('COPY --from=build --chown="a b" --chmod=0644 x /y').flags).toEqual({ from: 'build', chown: 'a b', chmod: '0644' });
    expect(one('ADD --chown=1\\:1 --chmod=755 x /y').flags).toEqual({ chown: '1:1', chmod: '755' });
    const hc = one('HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --start-interval=1s --retries=3 CMD true');
    expect(hc.flags).toEqual({ interval: '5s', timeout: '3s', 'start-period': '1s', 'start-interval': '1s', retries: '3' });
    expect(hc.args).toBe('CMD true');
  });
  it('flags are only the leading --words; `--` ends them', () => {
    expect(one('RUN echo --network=none')).toMatchObject({ flags: {}, args: 'echo --network=none' });
    expect(one('COPY -- --odd /d')).toMatchObject({ flags: {}, args: '--odd /d' });
  });
  it.each([
    ['RUN --mount=type=cache,target=/x make', 'Dockerfile:2: RUN --mount is not supported by tsrun'],
    ['RUN --security=insecure make', 'Dockerfile:2: RUN --security is not supported by tsrun'],
    ['RUN --device=x make', 'Dockerfile:2: RUN --device is not supported by tsrun'],
    ['COPY --link a /b', 'Dockerfile:2: COPY --link is not supported by tsrun'],
    ['COPY --parents a /b', 'Dockerfile:2: COPY --parents is not supported by tsrun'],
    ['COPY --exclude=*.md a /b', 'Dockerfile:2: COPY --exclude is not supported by tsrun'],
    ['ADD --checksum=sha256:abc http://x/y /b', 'Dockerfile:2: ADD --checksum is not supported by tsrun'],
    ['ADD --keep-git-dir=true https://x/y.git /b', 'Dockerfile:2: ADD --keep-git-dir is not supported by tsrun'],
    ['ADD --link a /b', 'Dockerfile:2: ADD --link is not supported by tsrun'],
    ['ADD --from=x a /b', 'Dockerfile:2: ADD does not accept --from (COPY --from does)'],
    ['RUN --frobnicate make', 'Dockerfile:2: unknown flag: --frobnicate (RUN accepts --network)'],
    ['ENV --x=1 A=b', 'Dockerfile:2: unknown flag: --x (ENV accepts no flags)'],
    ['COPY --from a /b', 'Dockerfile:2: missing a value on flag: --from (write --from=value)'],
    ['COPY --from=a --from=b a /b', 'Dockerfile:2: duplicate flag specified: --from'],
    ['RUN --network=bridge true', 'Dockerfile:2: invalid network mode "bridge" for RUN --network (default, none or host)'],
  ])('%s', (text, message) => {
    expect(errorOf(() => parse(`FROM x\n${text}`))).toBe(message);
  });
});

describe('continuation lines', () => {
  it('the escape character at the end joins the next line; its leading blanks stay', () => {
    const run = one('RUN echo a \\\n    b \\\n\tc');
    expect(run.args).toBe('echo a     b \tc');
    expect(run.source).toEqual({ file: 'Dockerfile', line: 2, text: 'RUN echo a     b \tc' });
  });
  it('trailing blanks after the escape character still continue', () => {
    expect(one('RUN a \\   \n b').args).toBe('a  b');
  });
  it('comment lines and blank lines inside are dropped', () => {
    const [run, cmd] = body('FROM x\nRUN apt-get update && \\\n  # install the tools\n\n  apt-get install -y \\\n    # a comment ending in \\\n    make\nCMD ok');
    expect(run!.args).toBe('apt-get update &&   apt-get install -y     make');
    expect(cmd).toMatchObject({ keyword: 'CMD', source: { line: 8 } });
  });
  it('a # in the middle of a line is not a comment', () => {
    expect(one('RUN echo a # b').args).toBe('echo a # b');
  });
  it('an escaped escape character at the end does not continue (docker)', () => {
    const [a, b] = body('FROM x\nRUN echo a\\\\\nRUN echo b');
    expect(a!.args).toBe('echo a\\\\');
    expect(b!.args).toBe('echo b');
  });
  it('a continuation at the end of the file ends the instruction', () => {
    expect(one('RUN a \\').args).toBe('a');
  });
  it('a lone escape character line continues', () => {
    expect(one('RUN a \\\n\\\nb').args).toBe('a b');
  });
  it('the next instruction starts on the right line after continuations', () => {
    const insts = body('FROM x\nRUN a \\\n b \\\n c\nRUN d');
    expect(insts.map((i) => i.source.line)).toEqual([2, 5]);
  });
});

describe('parser directives', () => {
  it('# escape=` makes the backtick the escape and continuation character', () => {
    const df = parse('# escape=`\nFROM x\nRUN dir C:\\ `\n  # comment\n  /b\nCOPY a\\b c:\\dst\\');
    expect(df.escape).toBe('`');
    expect(df.stages[0]!.instructions.map((i) => i.args)).toEqual(['dir C:\\   /b', 'a\\b c:\\dst\\']);
  });
  it('spaces and case around the directive are allowed; syntax and check are ignored', () => {
    expect(parse('# syntax=docker/dockerfile:1\n#  ESCAPE = `\n# check=skip=all\nFROM x').escape).toBe('`');
  });
  it('a directive after a blank line, an instruction or another comment is a comment', () => {
    expect(parse('\n# escape=`\nFROM x').escape).toBe('\\');
    expect(parse('# hello\n# escape=`\nFROM x').escape).toBe('\\');
    expect(parse('FROM x\n# escape=`\nRUN a').escape).toBe('\\');
  });
  it('errors: an invalid escape token, a repeated directive', () => {
    expect(errorOf(() => parse('# escape=x\nFROM x'))).toBe("Dockerfile:1: invalid escape token 'x' does not match ` or \\");
    expect(errorOf(() => parse('# escape=`\n# escape=\\\nFROM x'))).toBe('Dockerfile:2: only one escape parser directive can be used');
  });
});

describe('JSON and shell forms', () => {
  it('a JSON array of strings is the exec form', () => {
    expect(one('CMD ["a", "b c"]')).toMatchObject({ json: ['a', 'b c'], args: '["a", "b c"]' });
    expect(one('ENTRYPOINT []')).toMatchObject({ json: [] });
    expect(one('COPY ["a b", "/c"]')).toMatchObject({ json: ['a b', '/c'] });
    expect(one('VOLUME ["/v"]')).toMatchObject({ json: ['/v'] });
    expect(one('SHELL ["/bin/bash", "-c"]')).toMatchObject({ json: ['/bin/bash', '-c'] });
    expect(one('RUN --network=none ["true"]')).toMatchObject({ json: ['true'], flags: { network: 'none' } });
  });
  it('invalid JSON falls back to the shell form', () => {
    for (const text of ["CMD ['a']", 'CMD [a, b]', 'RUN [ -f x ] && y', 'CMD ["a" "b"]', 'CMD ["a"] x', 'CMD {"a": 1}']) {
      expect(one(text)).not.toHaveProperty('json');
    }
  });
  it('HEALTHCHECK: JSON after CMD', () => {
    expect(one('HEALTHCHECK CMD ["curl", "x"]')).toMatchObject({ json: ['curl', 'x'], args: 'CMD ["curl", "x"]' });
    expect(one('HEALTHCHECK CMD curl x')).not.toHaveProperty('json');
  });
  it('instructions without a JSON form keep brackets as text', () => {
    expect(one('ENV A=["x"]')).not.toHaveProperty('json');
    expect(one('LABEL a=[1]')).not.toHaveProperty('json');
  });
});

describe('heredocs', () => {
  it('RUN <<EOF: the body up to the terminator; the text and args keep only the first line', () => {
    const [run, cmd] = body('FROM x\nRUN <<EOF\necho hi\n  echo "$A"\n\nEOF\nCMD done');
    expect(run).toEqual({
      keyword: 'RUN',
      source: { file: 'Dockerfile', line: 2, text: 'RUN <<EOF' },
      flags: {},
      args: '<<EOF',
      heredocs: [{ name: 'EOF', body: 'echo hi\n  echo "$A"\n\n', quoted: false }],
    });
    expect(cmd).toMatchObject({ keyword: 'CMD', source: { line: 7 } });
  });
  it('<<-EOF strips leading tabs from the body and the terminator', () => {
    expect(one('RUN <<-EOF\n\techo a\n\t\t b\n  c\n\tEOF').heredocs).toEqual([{ name: 'EOF', body: 'echo a\n b\n  c\n', quoted: false }]);
  });
  it('without -, a terminator with leading tabs or trailing blanks is body', () => {
    expect(one('RUN <<EOF\n\tEOF\nEOF \nEOF').heredocs[0]!.body).toBe('\tEOF\nEOF \n');
  });
  it('quoted delimiters: no expansion later', () => {
    expect(one('RUN <<"EOF"\n$A\nEOF').heredocs).toEqual([{ name: 'EOF', body: '$A\n', quoted: true }]);
    expect(one("RUN <<'EOF'\n$A\nEOF").heredocs).toEqual([{ name: 'EOF', body: '$A\n', quoted: true }]);
    expect(one("RUN <<-'EOF'\n\t$A\n\tEOF").heredocs).toEqual([{ name: 'EOF', body: '$A\n', quoted: true }]);
  });
  it('words after the heredoc: RUN python3 <<EOF and RUN <<EOF bash', () => {
    expect(one('RUN python3 <<EOF\nprint(1)\nEOF')).toMatchObject({ args: 'python3 <<EOF', heredocs: [{ name: 'EOF', body: 'print(1)\n' }] });
    expect(one('RUN <<EOF bash -e\nset -x\nEOF')).toMatchObject({ args: '<<EOF bash -e', heredocs: [{ name: 'EOF', body: 'set -x\n' }] });
    expect(one('RUN cat <<EOF > /out\nx\nEOF')).toMatchObject({ args: 'cat <<EOF > /out', heredocs: [{ name: 'EOF', body: 'x\n' }] });
  });
  it('several heredocs, read one after the other', () => {
    const copy = one('COPY <<A <<B /dest/\na\nA\nb1\nb2\nB\nRUN next');
    expect(copy).toMatchObject({ args: '<<A <<B /dest/', heredocs: [{ name: 'A', body: 'a\n' }, { name: 'B', body: 'b1\nb2\n' }] });
    expect(body('FROM x\nCOPY <<A <<B /dest/\na\nA\nb\nB\nRUN next')[1]).toMatchObject({ keyword: 'RUN', source: { line: 7 } });
  });
  it('file descriptors and a blank after <<', () => {
    expect(one('RUN cat 3<<EOF\nx\nEOF').heredocs).toEqual([{ name: 'EOF', body: 'x\n', quoted: false }]);
    expect(one('RUN cat << EOF\nx\nEOF').heredocs).toEqual([{ name: 'EOF', body: 'x\n', quoted: false }]);
  });
  it('an empty body', () => {
    expect(one('COPY <<EOF /empty\nEOF').heredocs).toEqual([{ name: 'EOF', body: '', quoted: false }]);
  });
  it('a heredoc after a continuation line', () => {
    expect(one('RUN cat \\\n  <<EOF\nx\nEOF')).toMatchObject({ args: 'cat   <<EOF', heredocs: [{ body: 'x\n' }] });
  });
  it('heredocs are not read where docker does not read them', () => {
    const insts = body('FROM x\nRUN echo "<<EOF"\nRUN echo \'<<EOF\'\nRUN ["cat", "<<EOF"]\nCMD cat <<EOF\nRUN echo a<<b\nRUN echo done');
    // quoted, JSON form, not RUN/COPY/ADD, `<<` inside a word
    expect(insts.map((i) => i.heredocs)).toEqual([[], [], [], [], [], []]);
    expect(insts.at(-1)!.args).toBe('echo done');
  });
  it('CMD and ENTRYPOINT do not take heredocs: the next line is the next instruction', () => {
    expect(errorOf(() => parse('FROM x\nCMD cat <<EOF\nhello\nEOF'))).toBe('Dockerfile:3: unknown instruction: HELLO');
  });
  it('ONBUILD RUN and COPY take heredocs', () => {
    expect(one('ONBUILD COPY <<EOF /f\nhi\nEOF')).toMatchObject({ keyword: 'ONBUILD', args: 'COPY <<EOF /f', heredocs: [{ name: 'EOF', body: 'hi\n' }] });
  });
  it('an unterminated heredoc is an error at its instruction', () => {
    expect(errorOf(() => parse('FROM x\nRUN <<EOF\necho hi\n'))).toBe('Dockerfile:2: unterminated heredoc: no line "EOF" ends it');
  });
  it('comments and continuations inside a body are body', () => {
    expect(one('RUN <<EOF\n# not a comment \\\nEOF').heredocs[0]!.body).toBe('# not a comment \\\n');
  });
});

describe('parseInstruction (ONBUILD triggers)', () => {
  it('parses one instruction at the given line', () => {
    expect(parseInstruction('RUN --network=none echo hi', 'Dockerfile', 12)).toEqual({
      keyword: 'RUN',
      source: { file: 'Dockerfile', line: 12, text: 'RUN --network=none echo hi' },
      flags: { network: 'none' },
      args: 'echo hi',
      heredocs: [],
    });
  });
  it('with heredocs', () => {
    expect(parseInstruction('COPY <<EOF /f\nbody\nEOF', 'Dockerfile', 3)).toMatchObject({ heredocs: [{ name: 'EOF', body: 'body\n' }] });
  });
  it('errors name the given line', () => {
    expect(errorOf(() => parseInstruction('FROBNICATE', 'Dockerfile', 4))).toBe('Dockerfile:4: unknown instruction: FROBNICATE');
    expect(errorOf(() => parseInstruction('RUN --mount=x y', 'Dockerfile', 4))).toBe('Dockerfile:4: RUN --mount is not supported by tsrun');
    expect(errorOf(() => parseInstruction('RUN a\nRUN b', 'Dockerfile', 4))).toBe('Dockerfile:4: expected one instruction, found 2: "RUN a\\nRUN b"');
  });
});
