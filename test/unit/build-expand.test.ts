import { describe, expect, it } from 'vitest';
// buildkit test vectors (envVarTest, wordsTest) are at the end of this file.
import { evaluate, expandWord, expandWords, type Vars } from '../../src/build/expand.js';
import { goDuration } from '../../src/sys/go-duration.js';
import { parseInstruction } from '../../src/build/parse.js';
import type { Instruction } from '../../src/build/instructions.js';
import { errorOf } from './build-errors.js';

const vars = (map: Record<string, string>): Vars => (name) => map[name];
const env = vars({ A: 'aa', E: '', P: '/p', SP: 'x  y', PORTS: '80 443/udp', U: 'app', FILE: 'path/to/file.tar.gz' });
const word = (w: string, escape = '\\'): string => expandWord(w, env, escape);

/** Parses one instruction (reported at line 7) and evaluates it with `env`. */
const ev = (text: string, v: Vars = env, escape = '\\'): Instruction => evaluate(parseInstruction(text, 'Dockerfile', 7), v, escape);

describe('expandWord: buildkit test vectors', () => {
  const envs = vars({ PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' });
  for (const line of envVarTest) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [platform, source, expected] = line.split('|').map((s) => s.trim()) as [string, string, string];
    if (platform === 'W') continue; // Windows-only expectations
    it(`${source} → ${expected}`, () => {
      if (expected === 'error') expect(() => expandWord(source, envs, '\\')).toThrow();
      else expect(expandWord(source, envs, '\\')).toBe(expected);
    });
  }
});

describe('expandWord', () => {
  it('replaces $VAR and ${VAR}; unset variables expand to nothing', () => {
    expect(word('$A/${A}x$NOPE.${NOPE}')).toBe('aa/aax.');
  });
  it('nested defaults', () => {
    expect(word('${NOPE:-${A}}')).toBe('aa');
    expect(word('${NOPE:-${NOPE2:-deep}}')).toBe('deep');
    expect(word('${NOPE:-a ${A} b}')).toBe('a aa b');
  });
  it(':- and - differ on a set but empty variable', () => {
    expect(word('${E:-d}')).toBe('d');
    expect(word('${E-d}')).toBe('');
    expect(word('${NOPE-d}')).toBe('d');
    expect(word('${A-d}')).toBe('aa');
  });
  it(':+ and + on set, unset and empty', () => {
    expect(word('${A:+x}')).toBe('x');
    expect(word('${NOPE:+x}')).toBe('');
    expect(word('${E:+x}')).toBe('');
    expect(word('${E+x}')).toBe('x');
    expect(word('${NOPE+x}')).toBe('');
  });
  it(':? and ? fail with the message, naming the variable', () => {
    expect(word('${A:?must be set}')).toBe('aa');
    expect(() => word('${NOPE:?must be set}')).toThrow('NOPE: must be set');
    expect(() => word('${E:?must be set}')).toThrow('E: must be set');
    expect(() => word('${NOPE:?}')).toThrow('NOPE: is not allowed to be unset');
    expect(() => word('${E:?}')).toThrow('E: is not allowed to be empty');
    expect(word('${E?}')).toBe('');
    expect(() => word('${NOPE?}')).toThrow('NOPE: is not allowed to be unset');
    expect(() => word('${NOPE?need $A}')).toThrow('NOPE: need aa');
  });
  it('the escape character makes $ and quotes literal', () => {
    expect(word('\\$A')).toBe('$A');
    expect(word('\\${A}')).toBe('${A}');
    expect(word('\\"q\\"')).toBe('"q"');
    expect(word("it\\'s")).toBe("it's");
    expect(word('a\\ b')).toBe('a b');
  });
  it('with `# escape=`` the backtick escapes and \\ is an ordinary character', () => {
    expect(word('`$A', '`')).toBe('$A');
    expect(word('C:\\dir\\$A', '`')).toBe('C:\\dir\\aa');
    expect(word('"`"x`""', '`')).toBe('"x"');
  });
  it('single quotes are literal, double quotes expand; both are removed', () => {
    expect(word("'$A \\$A'")).toBe('$A \\$A');
    expect(word('"$A \\$A"')).toBe('aa $A');
    expect(word('"it\'s"')).toBe("it's");
    expect(word('a"b c"\'d\'')).toBe('ab cd');
    expect(word('"\\n"')).toBe('\\n'); // in "", \ escapes only " $ and itself
  });
  it('$ before a non-name character, or at the end, is literal', () => {
    expect(word('a$')).toBe('a$');
    expect(word('$')).toBe('$');
    expect(word('$.x')).toBe('$.x');
    expect(word('"$"')).toBe('$');
    expect(word('cost: 5$ ')).toBe('cost: 5$ ');
  });
  it('positional and special parameters are names that are never set', () => {
    expect(word('$1x')).toBe('x');
    expect(word('$$')).toBe('');
    expect(word('$@x')).toBe('x');
  });
  it('keeps blanks inside the word', () => {
    expect(word('a  b $SP')).toBe('a  b x  y');
  });
  it('# ## % %% remove a prefix or suffix matching a pattern', () => {
    expect(word('${FILE#*/}')).toBe('to/file.tar.gz');
    expect(word('${FILE##*/}')).toBe('file.tar.gz');
    expect(word('${FILE%.*}')).toBe('path/to/file.tar');
    expect(word('${FILE%%.*}')).toBe('path/to/file');
    expect(word('${FILE#nomatch}')).toBe('path/to/file.tar.gz');
    expect(word('${NOPE#x}')).toBe('');
    expect(() => word('${FILE:#x}')).toThrow('unsupported modifier (:#) in substitution');
  });
  it('/ and // replace the first or every match', () => {
    expect(word('${FILE/t/T}')).toBe('paTh/to/file.tar.gz');
    expect(word('${FILE//t/T}')).toBe('paTh/To/file.Tar.gz');
    expect(word('${FILE//?a/_}')).toBe('_th/to/file._r.gz');
  });
  it('rejects the forms docker rejects, with its message', () => {
    expect(() => word('${A:=x}')).toThrow('unsupported modifier (:=) in substitution');
    expect(() => word('${A=x}')).toThrow('unsupported modifier (=) in substitution');
    expect(() => word('${}')).toThrow('bad substitution');
    expect(() => word('${A')).toThrow("missing '}'");
    expect(() => word('${A:-x')).toThrow("missing '}'");
    expect(() => word('"open')).toThrow('double-quote');
    expect(() => word("'open")).toThrow('single-quote');
  });
  it('errors are EBUILD and name the word', () => {
    try {
      word('${A:=x}');
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'EBUILD', message: 'failed to process "${A:=x}": unsupported modifier (:=) in substitution' });
    }
  });
});

describe('expandWords: buildkit test vectors', () => {
  const set: string[] = [];
  for (const line of wordsTest) {
    if (line.startsWith('#')) continue;
    if (line.startsWith('ENV ')) {
      set.push(line.slice(3).replace(/^ +/, ''));
      continue;
    }
    const [source, expected] = line.split('|') as [string, string];
    const envs = new Map(set.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as [string, string]));
    it(`${source.trim()} → ${expected}`, () => {
      let got: string[];
      try {
        got = expandWords(source.trim(), (n) => envs.get(n), '\\');
      } catch {
        got = ['error'];
      }
      expect(got).toEqual(expected.replace(/^ +/, '').split(','));
    });
  }
});

describe('expandWords', () => {
  it('splits on unquoted, unescaped blanks, and inside variable values', () => {
    expect(expandWords('a "b c" $A d\\ e', env, '\\')).toEqual(['a', 'b c', 'aa', 'd e']);
    expect(expandWords('$SP "$SP"', env, '\\')).toEqual(['x', 'y', 'x  y']);
    expect(expandWords('$PORTS', env, '\\')).toEqual(['80', '443/udp']);
    expect(expandWords('  ', env, '\\')).toEqual([]);
  });
});

describe('goDuration (Go time.ParseDuration, in ns)', () => {
  it.each([
    ['30s', 30e9],
    ['1m30s', 90e9],
    ['500ms', 500e6],
    ['1h', 3600e9],
    ['1.5s', 1.5e9],
    ['.5s', 0.5e9],
    ['1h2m3s4ms5us6ns', 3723004005006],
    ['10µs', 10e3],
    ['0', 0],
    ['-1s', -1e9],
  ])('%s', (s, ns) => expect(goDuration(s)).toBe(ns));
  it.each(['', '1', '10x', 's', '1.2.3s', '1s2', '.s', 'abc'])('rejects %j', (s) => expect(goDuration(s)).toBeUndefined());
});

describe('evaluate', () => {

  describe('FROM', () => {
    it('expands the image and platform with the variables given, lower-cases the name', () => {
      expect(ev('FROM --platform=$P alpine:${A} AS Build')).toEqual({ kind: 'FROM', image: 'alpine:aa', name: 'build', platform: '/p' });
      expect(ev('FROM scratch')).toEqual({ kind: 'FROM', image: 'scratch' });
    });
    it('an image that expands to nothing is an error', () => {
      expect(errorOf(() => ev('FROM $NOPE'))).toBe('Dockerfile:7: base name ($NOPE) should not be blank');
    });
  });

  describe('RUN', () => {
    it('shell form as written, not expanded', () => {
      expect(ev('RUN echo $A "b"')).toEqual({ kind: 'RUN', command: { shell: 'echo $A "b"' }, heredocs: [] });
    });
    it('exec form from JSON, not expanded', () => {
      expect(ev('RUN ["echo", "$A"]')).toEqual({ kind: 'RUN', command: { exec: ['echo', '$A'] }, heredocs: [] });
    });
    it('--network', () => {
      expect(ev('RUN --network=none true')).toMatchObject({ network: 'none' });
      expect(ev('RUN --network=host true')).toMatchObject({ network: 'host' });
      expect(ev('RUN true')).not.toHaveProperty('network');
    });
    it('heredoc bodies are passed unexpanded (the shell expands them)', () => {
      expect(ev('RUN <<EOF\necho $A\nEOF')).toEqual({
        kind: 'RUN',
        command: { shell: '<<EOF' },
        heredocs: [{ name: 'EOF', body: 'echo $A\n', quoted: false }],
      });
      expect(ev('RUN python3 <<EOF\nprint(1)\nEOF')).toMatchObject({ command: { shell: 'python3 <<EOF' } });
    });
  });

  describe('CMD and ENTRYPOINT', () => {
    it('JSON is the exec form; anything else the shell form (invalid JSON falls back)', () => {
      expect(ev('CMD ["a", "b c"]')).toEqual({ kind: 'CMD', command: { exec: ['a', 'b c'] } });
      expect(ev('ENTRYPOINT  [ "x" ]  ')).toEqual({ kind: 'ENTRYPOINT', command: { exec: ['x'] } });
      expect(ev('CMD [ -f x ] && echo $A')).toEqual({ kind: 'CMD', command: { shell: '[ -f x ] && echo $A' } });
      expect(ev("CMD ['a']")).toEqual({ kind: 'CMD', command: { shell: "['a']" } });
      expect(ev('CMD ["a",]')).toEqual({ kind: 'CMD', command: { shell: '["a",]' } });
    });
    it('a JSON array of something other than strings is an error', () => {
      expect(errorOf(() => ev('CMD ["a", 1]'))).toBe('Dockerfile:7: when using JSON array syntax, arrays must be comprised of strings only');
    });
  });

  describe('COPY and ADD', () => {
    it('expands sources, destination and flags', () => {
      expect(ev('COPY --chown=$U:$U --chmod=0${NOPE:-755} --from=stage$A a/$A "b" $P/')).toEqual({
        kind: 'COPY', sources: ['a/aa', 'b'], dest: '/p/', from: 'stageaa', chown: 'app:app', chmod: '0755', heredocs: [],
      });
    });
    it('words are split on blanks before expansion, so a quoted name with a blank is an error (as in docker)', () => {
      expect(errorOf(() => ev('COPY "b c" /d'))).toBe('Dockerfile:7: failed to process "\\"b": unexpected end of statement while looking for matching double-quote');
    });
    it('the JSON form allows blanks in names, and is expanded too', () => {
      expect(ev('ADD ["a b", "$A", "/dst dir/"]')).toEqual({ kind: 'ADD', sources: ['a b', 'aa'], dest: '/dst dir/', heredocs: [] });
    });
    it('needs a source and a destination', () => {
      expect(errorOf(() => ev('COPY onlyone'))).toMatch(/^Dockerfile:7: COPY requires at least two arguments/);
      expect(errorOf(() => ev('ADD'))).toMatch(/^Dockerfile:7: ADD requires at least two arguments/);
    });
    it('--chmod must be octal', () => {
      expect(errorOf(() => ev('COPY --chmod=u+x a /b'))).toMatch(/^Dockerfile:7: invalid chmod parameter: "u\+x"/);
      expect(errorOf(() => ev('COPY --chmod=0999 a /b'))).toMatch(/invalid chmod/);
      expect(errorOf(() => ev('COPY --chmod=17777 a /b'))).toMatch(/invalid chmod/);
      expect(ev('COPY --chmod=644 a /b')).toMatchObject({ chmod: '644' });
    });
    it('heredoc sources are named <<NAME; bodies expand unless the delimiter is quoted', () => {
      const copy = ev('COPY <<A <<"B" <<-C /dest/\n$A "q" \\$A\nA\n$A\nB\n\t\t$A\n\tC');
      expect(copy).toEqual({
        kind: 'COPY',
        sources: ['<<A', '<<B', '<<C'],
        dest: '/dest/',
        heredocs: [
          { name: 'A', body: 'aa "q" $A\n', quoted: false },
          { name: 'B', body: '$A\n', quoted: true },
          { name: 'C', body: 'aa\n', quoted: false },
        ],
      });
    });
    it("a single-quoted delimiter, or a partly quoted one, also stops expansion", () => {
      expect(ev("COPY <<'X' /f\n$A\nX")).toMatchObject({ sources: ['<<X'], heredocs: [{ body: '$A\n', quoted: true }] });
      expect(ev('COPY <<E"O"F /f\n$A\nEOF')).toMatchObject({ sources: ['<<EOF'], heredocs: [{ name: 'EOF', body: '$A\n', quoted: true }] });
    });
    it('heredoc bodies always use \\ as the escape character (buildkit)', () => {
      expect(ev('COPY <<A /f\n`$A \\$A\nA', env, '`')).toMatchObject({ heredocs: [{ body: '`aa $A\n' }] });
    });
    it('a heredoc cannot be the destination', () => {
      expect(errorOf(() => ev('COPY a <<EOF\nx\nEOF'))).toBe('Dockerfile:7: COPY cannot accept a heredoc as a destination');
    });
  });

  describe('ENV and LABEL', () => {
    it('name=value pairs, quotes and escapes processed, keys and values expanded', () => {
      expect(ev('ENV A=1 B="two words" C=$A D=\'$A\' E=a\\ b F= ${A}k=v')).toEqual({
        kind: 'ENV',
        pairs: [['A', '1'], ['B', 'two words'], ['C', 'aa'], ['D', '$A'], ['E', 'a b'], ['F', ''], ['aak', 'v']],
      });
    });
    it('the legacy one-pair form: the rest of the line is the value', () => {
      expect(ev('ENV K value  with "spaces" $A')).toEqual({ kind: 'ENV', pairs: [['K', 'value  with spaces aa']] });
      expect(ev('LABEL maintainer Jane Doe')).toEqual({ kind: 'LABEL', pairs: [['maintainer', 'Jane Doe']] });
    });
    it('LABEL keys may be quoted', () => {
      expect(ev('LABEL "org.x.y"="a b" v=1')).toEqual({ kind: 'LABEL', pairs: [['org.x.y', 'a b'], ['v', '1']] });
    });
    it('errors: a word without =, an empty name, a lone name', () => {
      expect(errorOf(() => ev('ENV A=1 B'))).toBe('Dockerfile:7: Syntax error - can\'t find = in "B". Must be of the form: name=value');
      expect(errorOf(() => ev('LABEL =x'))).toBe('Dockerfile:7: LABEL names can not be blank');
      expect(errorOf(() => ev('ENV A'))).toMatch(/^Dockerfile:7: ENV must have two arguments/);
      expect(errorOf(() => ev('ENV'))).toBe('Dockerfile:7: ENV requires at least one argument');
    });
  });

  describe('ARG', () => {
    it('names and defaults, several per line; defaults expanded', () => {
      expect(ev('ARG a b=1 c="x y" d=$A e=')).toEqual({
        kind: 'ARG',
        args: [{ name: 'a' }, { name: 'b', value: '1' }, { name: 'c', value: 'x y' }, { name: 'd', value: 'aa' }, { name: 'e', value: '' }],
      });
    });
    it('errors', () => {
      expect(errorOf(() => ev('ARG'))).toBe('Dockerfile:7: ARG requires at least one argument');
      expect(errorOf(() => ev('ARG =1'))).toBe('Dockerfile:7: ARG names can not be blank');
    });
  });

  describe('WORKDIR, USER, STOPSIGNAL, MAINTAINER', () => {
    it('the whole argument is one word, expanded', () => {
      expect(ev('WORKDIR $P/"my dir"')).toEqual({ kind: 'WORKDIR', path: '/p/my dir' });
      expect(ev('WORKDIR rel')).toEqual({ kind: 'WORKDIR', path: 'rel' });
      expect(ev('USER ${U}:staff')).toEqual({ kind: 'USER', user: 'app:staff' });
      expect(ev('STOPSIGNAL SIG${NOPE:-TERM}')).toEqual({ kind: 'STOPSIGNAL', signal: 'SIGTERM' });
      expect(ev('STOPSIGNAL 9')).toEqual({ kind: 'STOPSIGNAL', signal: '9' });
      expect(ev('MAINTAINER Jane <j@x> $A')).toEqual({ kind: 'MAINTAINER', name: 'Jane <j@x> $A' });
    });
    it('errors', () => {
      expect(errorOf(() => ev('WORKDIR'))).toBe('Dockerfile:7: WORKDIR requires exactly one argument');
      expect(errorOf(() => ev('WORKDIR $NOPE'))).toMatch(/^Dockerfile:7: WORKDIR path is empty/);
      expect(errorOf(() => ev('STOPSIGNAL SIGTERM now'))).toBe('Dockerfile:7: invalid signal: SIGTERM now');
    });
  });

  describe('EXPOSE', () => {
    it('normalizes to port/protocol, expands ranges and variables', () => {
      expect(ev('EXPOSE 80 53/UDP 9000/sctp 8000-8002 $PORTS 90/')).toEqual({
        kind: 'EXPOSE',
        ports: ['80/tcp', '53/udp', '9000/sctp', '8000/tcp', '8001/tcp', '8002/tcp', '80/tcp', '443/udp', '90/tcp'],
      });
    });
    it('like buildkit, host:container exposes the container port', () => {
      expect(ev('EXPOSE 8080:80')).toEqual({ kind: 'EXPOSE', ports: ['80/tcp'] });
    });
    it.each(['80/icmp', 'http', '70000', '90-80', '-1', '80-'])('rejects %s', (p) => {
      expect(errorOf(() => ev(`EXPOSE ${p}`))).toMatch(/^Dockerfile:7: invalid port/);
    });
  });

  describe('VOLUME', () => {
    it('JSON or words, expanded', () => {
      expect(ev('VOLUME /a $P')).toEqual({ kind: 'VOLUME', paths: ['/a', '/p'] });
      expect(ev('VOLUME ["/a b", "$P"]')).toEqual({ kind: 'VOLUME', paths: ['/a b', '/p'] });
      expect(errorOf(() => ev('VOLUME [""]'))).toBe('Dockerfile:7: VOLUME specified can not be an empty string');
    });
  });

  describe('HEALTHCHECK', () => {
    it('NONE, CMD in shell form, CMD in exec form', () => {
      expect(ev('HEALTHCHECK NONE')).toEqual({ kind: 'HEALTHCHECK', health: { Test: ['NONE'] } });
      expect(ev('HEALTHCHECK none')).toEqual({ kind: 'HEALTHCHECK', health: { Test: ['NONE'] } });
      expect(ev('HEALTHCHECK CMD curl -f http://x/ || exit 1')).toEqual({ kind: 'HEALTHCHECK', health: { Test: ['CMD-SHELL', 'curl -f http://x/ || exit 1'] } });
      expect(ev('HEALTHCHECK cmd ["curl", "-f", "$A"]')).toEqual({ kind: 'HEALTHCHECK', health: { Test: ['CMD', 'curl', '-f', '$A'] } });
    });
    it('durations in nanoseconds and retries', () => {
      expect(ev('HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1h --start-interval=2s --retries=3 CMD true').valueOf()).toEqual({
        kind: 'HEALTHCHECK',
        health: { Test: ['CMD-SHELL', 'true'], Interval: 90e9, Timeout: 500e6, StartPeriod: 3600e9, StartInterval: 2e9, Retries: 3 },
      });
      expect(ev('HEALTHCHECK --interval=0s --retries=0 CMD true')).toEqual({ kind: 'HEALTHCHECK', health: { Test: ['CMD-SHELL', 'true'] } });
    });
    it('errors name the line', () => {
      expect(errorOf(() => ev('HEALTHCHECK --interval=5 CMD true'))).toMatch(/^Dockerfile:7: invalid duration "5" for --interval/);
      expect(errorOf(() => ev('HEALTHCHECK --timeout=10us CMD true'))).toBe('Dockerfile:7: Interval "timeout" cannot be less than 1ms');
      expect(errorOf(() => ev('HEALTHCHECK --retries=-1 CMD true'))).toBe('Dockerfile:7: --retries cannot be negative (-1)');
      expect(errorOf(() => ev('HEALTHCHECK --retries=x CMD true'))).toMatch(/^Dockerfile:7: invalid --retries "x"/);
      expect(errorOf(() => ev('HEALTHCHECK NONE x'))).toBe('Dockerfile:7: HEALTHCHECK NONE takes no arguments');
      expect(errorOf(() => ev('HEALTHCHECK CMD'))).toBe('Dockerfile:7: Missing command after HEALTHCHECK CMD');
      expect(errorOf(() => ev('HEALTHCHECK PING x'))).toBe('Dockerfile:7: Unknown type "PING" in HEALTHCHECK (try CMD)');
      expect(errorOf(() => ev('HEALTHCHECK'))).toBe('Dockerfile:7: HEALTHCHECK requires at least one argument');
    });
  });

  describe('SHELL', () => {
    it('JSON form only', () => {
      expect(ev('SHELL ["/bin/bash", "-c"]')).toEqual({ kind: 'SHELL', shell: ['/bin/bash', '-c'] });
      expect(errorOf(() => ev('SHELL /bin/bash -c'))).toBe('Dockerfile:7: SHELL requires the arguments to be in JSON form');
      expect(errorOf(() => ev('SHELL []'))).toBe('Dockerfile:7: SHELL requires at least one argument');
    });
  });

  describe('ONBUILD', () => {
    it('keeps the trigger as written, with its heredocs', () => {
      expect(ev('ONBUILD RUN echo $A')).toEqual({ kind: 'ONBUILD', trigger: 'RUN echo $A' });
      expect(ev('onbuild  copy <<EOF /x\nhi $A\nEOF')).toEqual({ kind: 'ONBUILD', trigger: 'copy <<EOF /x\nhi $A\nEOF' });
    });
    it('the trigger parses back to the same instruction', () => {
      const onbuild = ev('ONBUILD RUN <<-EOF sh\n\techo hi\n\tEOF') as { trigger: string };
      const raw = parseInstruction(onbuild.trigger, 'Dockerfile', 3);
      expect(raw).toMatchObject({ keyword: 'RUN', args: '<<-EOF sh', heredocs: [{ name: 'EOF', body: 'echo hi\n' }], source: { line: 3 } });
    });
    it('ONBUILD ONBUILD, FROM and MAINTAINER are refused', () => {
      expect(errorOf(() => ev('ONBUILD ONBUILD RUN x'))).toBe("Dockerfile:7: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      expect(errorOf(() => ev('ONBUILD from x'))).toBe("Dockerfile:7: FROM isn't allowed as an ONBUILD trigger");
      expect(errorOf(() => ev('ONBUILD MAINTAINER x'))).toBe("Dockerfile:7: MAINTAINER isn't allowed as an ONBUILD trigger");
      expect(errorOf(() => ev('ONBUILD'))).toBe('Dockerfile:7: ONBUILD requires at least one argument');
    });
  });

  it('expansion errors name the line', () => {
    expect(errorOf(() => ev('ENV X=${NOPE:?required}'))).toBe('Dockerfile:7: failed to process "${NOPE:?required}": NOPE: required');
    // docker splits ENV's words before expanding, so a blank inside ${} splits the word
    expect(errorOf(() => ev('ENV X=${NOPE:?is required}'))).toMatch(/can't find = in "required}"/);
    expect(errorOf(() => ev('WORKDIR ${A'))).toBe('Dockerfile:7: failed to process "${A": syntax error: missing \'}\'');
  });
});


/** `platform|word|expected` lines (A: all, U: unix, W: windows); `error`: the word must fail. */
const envVarTest: string[] = [
  "A|hello                    |     hello",
  "A|he'll'o                  |     hello",
  "A|he'llo                   |     error",
  "A|he\\'llo                  |     he'llo",
  "A|he\\\\'llo                 |     error",
  "A|abc\\tdef                 |     abctdef",
  "A|\"abc\\tdef\"               |     abc\\tdef",
  "A|\"abc\\\\tdef\"              |     abc\\tdef",
  "A|'abc\\tdef'               |     abc\\tdef",
  "A|hello\\                   |     hello",
  "A|hello\\\\                  |     hello\\",
  "A|\"hello                   |     error",
  "A|\"hello\\\"                 |     error",
  "A|\"hel'lo\"                 |     hel'lo",
  "A|'hello                   |     error",
  "A|'hello\\'                 |     hello\\",
  "A|'hello\\there'            |     hello\\there",
  "A|'hello\\\\there'           |     hello\\\\there",
  "A|\"''\"                     |     ''",
  "A|$.                       |     $.",
  "A|he$1x                    |     hex",
  "A|he$.x                    |     he$.x",
  "# Next one is different on Windows as $pwd==$PWD",
  "U|he$pwd.                  |     he.",
  "W|he$pwd.                  |     he/home.",
  "A|he$PWD                   |     he/home",
  "A|he\\$PWD                  |     he$PWD",
  "A|he\\\\$PWD                 |     he\\/home",
  "A|\"he\\$PWD\"                |     he$PWD",
  "A|\"he\\\\$PWD\"               |     he\\/home",
  "A|\\${}                     |     ${}",
  "A|\\${}aaa                  |     ${}aaa",
  "A|he\\${}                   |     he${}",
  "A|he\\${}xx                 |     he${}xx",
  "A|${}                      |     error",
  "A|${}aaa                   |     error",
  "A|he${}                    |     error",
  "A|he${}xx                  |     error",
  "A|he${hi}                  |     he",
  "A|he${hi}xx                |     hexx",
  "A|he${PWD}                 |     he/home",
  "A|he${.}                   |     error",
  "A|he${XXX:-000}xx          |     he000xx",
  "A|he${PWD:-000}xx          |     he/homexx",
  "A|he${XXX:-$PWD}xx         |     he/homexx",
  "A|he${XXX:-${PWD:-yyy}}xx  |     he/homexx",
  "A|he${XXX:-${YYY:-yyy}}xx  |     heyyyxx",
  "A|he${XXX:YYY}             |     error",
  "A|he${XXX?}                |     error",
  "A|he${XXX:?}               |     error",
  "A|he${PWD?}                |     he/home",
  "A|he${PWD:?}               |     he/home",
  "A|he${NULL?}               |     he",
  "A|he${NULL:?}              |     error",
  "A|he${XXX:+${PWD}}xx       |     hexx",
  "A|he${PWD:+${XXX}}xx       |     hexx",
  "A|he${PWD:+${SHELL}}xx     |     hebashxx",
  "A|he${XXX:+000}xx          |     hexx",
  "A|he${PWD:+000}xx          |     he000xx",
  "A|'he${XX}'                |     he${XX}",
  "A|\"he${PWD}\"               |     he/home",
  "A|\"he'$PWD'\"               |     he'/home'",
  "A|\"$PWD\"                   |     /home",
  "A|'$PWD'                   |     $PWD",
  "A|'\\$PWD'                  |     \\$PWD",
  "A|'\"hello\"'                |     \"hello\"",
  "A|he\\$PWD                  |     he$PWD",
  "A|\"he\\$PWD\"                |     he$PWD",
  "A|'he\\$PWD'                |     he\\$PWD",
  "A|he${PWD                  |     error",
  "A|he${PWD:=000}xx          |     error",
  "A|he${PWD:+${PWD}:}xx      |     he/home:xx",
  "A|he${XXX:-\\$PWD:}xx       |     he$PWD:xx",
  "A|he${XXX:-\\${PWD}z}xx     |     he${PWDz}xx",
  "A|안녕하세요                 |     안녕하세요",
  "A|안'녕'하세요               |     안녕하세요",
  "A|안'녕하세요                |     error",
  "A|안녕\\'하세요               |     안녕'하세요",
  "A|안\\\\'녕하세요              |     error",
  "A|안녕\\t하세요               |     안녕t하세요",
  "A|\"안녕\\t하세요\"             |     안녕\\t하세요",
  "A|'안녕\\t하세요              |     error",
  "A|안녕하세요\\                |     안녕하세요",
  "A|안녕하세요\\\\               |     안녕하세요\\",
  "A|\"안녕하세요                |     error",
  "A|\"안녕하세요\\\"              |     error",
  "A|\"안녕'하세요\"              |     안녕'하세요",
  "A|'안녕하세요                |     error",
  "A|'안녕하세요\\'              |     안녕하세요\\",
  "A|안녕$1x                    |     안녕x",
  "A|안녕$.x                    |     안녕$.x",
  "# Next one is different on Windows as $pwd==$PWD",
  "U|안녕$pwd.                  |     안녕.",
  "W|안녕$pwd.                  |     안녕/home.",
  "A|안녕$PWD                   |     안녕/home",
  "A|안녕\\$PWD                  |     안녕$PWD",
  "A|안녕\\\\$PWD                 |     안녕\\/home",
  "A|안녕\\${}                   |     안녕${}",
  "A|안녕\\${}xx                 |     안녕${}xx",
  "A|안녕${}                    |     error",
  "A|안녕${}xx                  |     error",
  "A|안녕${hi}                  |     안녕",
  "A|안녕${hi}xx                |     안녕xx",
  "A|안녕${PWD}                 |     안녕/home",
  "A|안녕${.}                   |     error",
  "A|안녕${XXX:-000}xx          |     안녕000xx",
  "A|안녕${PWD:-000}xx          |     안녕/homexx",
  "A|안녕${XXX:-$PWD}xx         |     안녕/homexx",
  "A|안녕${XXX:-${PWD:-yyy}}xx  |     안녕/homexx",
  "A|안녕${XXX:-${YYY:-yyy}}xx  |     안녕yyyxx",
  "A|안녕${XXX:YYY}             |     error",
  "A|안녕${XXX:+${PWD}}xx       |     안녕xx",
  "A|안녕${PWD:+${XXX}}xx       |     안녕xx",
  "A|안녕${PWD:+${SHELL}}xx     |     안녕bashxx",
  "A|안녕${XXX:+000}xx          |     안녕xx",
  "A|안녕${PWD:+000}xx          |     안녕000xx",
  "A|'안녕${XX}'                |     안녕${XX}",
  "A|\"안녕${PWD}\"               |     안녕/home",
  "A|\"안녕'$PWD'\"               |     안녕'/home'",
  "A|'\"안녕\"'                   |     \"안녕\"",
  "A|안녕\\$PWD                  |     안녕$PWD",
  "A|\"안녕\\$PWD\"                |     안녕$PWD",
  "A|'안녕\\$PWD'                |     안녕\\$PWD",
  "A|안녕${PWD                  |     error",
  "A|안녕${PWD:=000}xx          |     error",
  "A|안녕${PWD:+${PWD}:}xx      |     안녕/home:xx",
  "A|안녕${XXX:-\\$PWD:}xx       |     안녕$PWD:xx",
  "A|안녕${XXX:-\\${PWD}z}xx     |     안녕${PWDz}xx",
  "A|$KOREAN                    |     한국어",
  "A|안녕$KOREAN                |     안녕한국어",
  "A|${{aaa}                   |     error",
  "A|${aaa}}                   |     }",
  "A|${aaa                     |     error",
  "A|${{aaa:-bbb}              |     error",
  "A|${aaa:-bbb}}              |     bbb}",
  "A|${aaa:-bbb                |     error",
  "A|${aaa:-bbb}               |     bbb",
  "A|${aaa:-${bbb:-ccc}}       |     ccc",
  "A|${aaa:-bbb ${foo}         |     error",
  "A|${aaa:-bbb {foo}          |     bbb {foo",
  "A|${:}                      |     error",
  "A|${:-bbb}                  |     error",
  "A|${:+bbb}                  |     error",
  "",
  "# Positional parameters won't be set:",
  "# http://pubs.opengroup.org/onlinepubs/009695399/utilities/xcu_chap02.html#tag_02_05_01",
  "A|$1                        |",
  "A|${1}                      |",
  "A|${1:+bbb}                 |",
  "A|${1:-bbb}                 |     bbb",
  "A|$2                        |",
  "A|${2}                      |",
  "A|${2:+bbb}                 |",
  "A|${2:-bbb}                 |     bbb",
  "A|$3                        |",
  "A|${3}                      |",
  "A|${3:+bbb}                 |",
  "A|${3:-bbb}                 |     bbb",
  "A|$4                        |",
  "A|${4}                      |",
  "A|${4:+bbb}                 |",
  "A|${4:-bbb}                 |     bbb",
  "A|$5                        |",
  "A|${5}                      |",
  "A|${5:+bbb}                 |",
  "A|${5:-bbb}                 |     bbb",
  "A|$6                        |",
  "A|${6}                      |",
  "A|${6:+bbb}                 |",
  "A|${6:-bbb}                 |     bbb",
  "A|$7                        |",
  "A|${7}                      |",
  "A|${7:+bbb}                 |",
  "A|${7:-bbb}                 |     bbb",
  "A|$8                        |",
  "A|${8}                      |",
  "A|${8:+bbb}                 |",
  "A|${8:-bbb}                 |     bbb",
  "A|$9                        |",
  "A|${9}                      |",
  "A|${9:+bbb}                 |",
  "A|${9:-bbb}                 |     bbb",
  "A|$999                      |",
  "A|${999}                    |",
  "A|${999:+bbb}               |",
  "A|${999:-bbb}               |     bbb",
  "A|$999aaa                   |     aaa",
  "A|${999}aaa                 |     aaa",
  "A|${999:+bbb}aaa            |     aaa",
  "A|${999:-bbb}aaa            |     bbbaaa",
  "A|$001                      |",
  "A|${001}                    |",
  "A|${001:+bbb}               |",
  "A|${001:-bbb}               |     bbb",
  "A|$001aaa                   |     aaa",
  "A|${001}aaa                 |     aaa",
  "A|${001:+bbb}aaa            |     aaa",
  "A|${001:-bbb}aaa            |     bbbaaa",
  "",
  "# Special parameters won't be set in the Dockerfile:",
  "# http://pubs.opengroup.org/onlinepubs/009695399/utilities/xcu_chap02.html#tag_02_05_02",
  "A|$@                        |",
  "A|${@}                      |",
  "A|${@:+bbb}                 |",
  "A|${@:-bbb}                 |     bbb",
  "A|$@@@                      |     @@",
  "A|$@aaa                     |     aaa",
  "A|${@}aaa                   |     aaa",
  "A|${@:+bbb}aaa              |     aaa",
  "A|${@:-bbb}aaa              |     bbbaaa",
  "A|$*                        |",
  "A|${*}                      |",
  "A|${*:+bbb}                 |",
  "A|${*:-bbb}                 |     bbb",
  "A|$#                        |",
  "A|${#}                      |",
  "A|${#:+bbb}                 |",
  "A|${#:-bbb}                 |     bbb",
  "A|$?                        |",
  "A|${?}                      |",
  "A|${?:+bbb}                 |",
  "A|${?:-bbb}                 |     bbb",
  "A|$-                        |",
  "A|${-}                      |",
  "A|${-:+bbb}                 |",
  "A|${-:-bbb}                 |     bbb",
  "A|$$                        |",
  "A|${$}                      |",
  "A|${$:+bbb}                 |",
  "A|${$:-bbb}                 |     bbb",
  "A|$!                        |",
  "A|${!}                      |",
  "A|${!:+bbb}                 |",
  "A|${!:-bbb}                 |     bbb",
  "A|$0                        |",
  "A|${0}                      |",
  "A|${0:+bbb}                 |",
  "A|${0:-bbb}                 |     bbb",
];

/** `ENV k=v` lines set variables; `word | w1,w2` lines give the words expected. */
const wordsTest: string[] = [
  "hello | hello",
  "hello${hi}bye | hellobye",
  "ENV hi=hi",
  "hello${hi}bye | hellohibye",
  "ENV space=abc  def",
  "hello${space}bye | helloabc,defbye",
  "hello\"${space}\"bye | helloabc  defbye",
  "hello \"${space}\"bye | hello,abc  defbye",
  "ENV leading=  ab c",
  "hello${leading}def | hello,ab,cdef",
  "hello\"${leading}\" def | hello  ab c,def",
  "hello\"${leading}\" | hello  ab c",
  "hello${leading} | hello,ab,c",
  "# next line MUST have 3 trailing spaces, don't erase them!",
  "ENV trailing=ab c   ",
  "hello${trailing} | helloab,c",
  "hello${trailing}d | helloab,c,d",
  "hello\"${trailing}\"d | helloab c   d",
  "# next line MUST have 3 trailing spaces, don't erase them!",
  "hel\"lo${trailing}\" | helloab c   ",
  "hello\" there  \" | hello there  ",
  "hello there     | hello,there",
  "hello\\ there | hello there",
  "hello\" there | error",
  "hello\\\" there | hello\",there",
  "hello\"\\\\there\" | hello\\there",
  "hello\"\\there\" | hello\\there",
  "hello'\\\\there' | hello\\\\there",
  "hello'\\there' | hello\\there",
  "hello'$there' | hello$there",
];
