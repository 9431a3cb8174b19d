// A Dockerfile as the builder reads it: stages of instructions, each with its line, words not
// yet expanded. Expansion ($VAR, ${VAR:-x}) happens while building, because its values come
// from the base image's ENV and the ARGs and ENVs seen so far (parse.ts and expand.ts).

/** Where an instruction is, for errors (`Dockerfile:LINE: message`) and progress. */
export interface Source {
  /** The Dockerfile's name as the user gave it (`Dockerfile`, `ci/Dockerfile.test`). */
  file: string;
  /** 1-based line of the instruction's keyword. */
  line: number;
  /** The instruction as written, continuation lines joined, heredoc bodies left out: `RUN make`. */
  text: string;
}

/** One raw instruction: keyword upper-cased, flags split off, the rest unexpanded. */
export interface RawInstruction {
  keyword: string;
  source: Source;
  /** `--from=build`, `--chown=1:1`, `--network=none`...: name → value (`true` for a bare flag). */
  flags: Record<string, string>;
  /** The arguments after the flags, as written (quotes and escapes kept for expansion). */
  args: string;
  /** JSON form (`["a", "b"]`), already decoded; undefined for the shell form. */
  json?: string[];
  /** Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) in order. */
  heredocs: Heredoc[];
}

export interface Heredoc {
  /** The word after `<<` without quotes or `-`: `EOF`. */
  name: string;
  /** The body, lines joined with `\n`, a trailing `\n`; tabs stripped for `<<-`. */
  body: string;
  /** Quoted delimiter (`<<"EOF"`): the body is not expanded. */
  quoted: boolean;
}

export interface Stage {
  /** 0-based. */
  index: number;
  /** `AS name`, lower-cased; undefined without one. */
  name?: string;
  from: RawInstruction;
  instructions: RawInstruction[];
}

export interface Dockerfile {
  file: string;
  /** `# escape=` directive: `\` or `` ` ``. */
  escape: string;
  /** ARGs before the first FROM: they may be used in FROM lines. */
  globalArgs: RawInstruction[];
  stages: Stage[];
}

/** A command as written: exec form or shell form (run by SHELL, default `/bin/sh -c`). */
export type CommandForm = { exec: string[] } | { shell: string };

/** Instructions after expansion, as the builder executes them. */
export type Instruction =
  | { kind: 'FROM'; image: string; name?: string; platform?: string }
  | { kind: 'RUN'; command: CommandForm; network?: 'default' | 'none' | 'host'; heredocs: Heredoc[] }
  | {
      kind: 'COPY' | 'ADD';
      /** Context paths (wildcards allowed), URLs (ADD), or heredoc names (`<<EOF`). */
      sources: string[];
      dest: string;
      from?: string;
      chown?: string;
      chmod?: string;
      /** Heredoc sources: a file named `name` with `body` as contents. */
      heredocs: Heredoc[];
    }
  | { kind: 'ENV'; pairs: Array<[string, string]> }
  | { kind: 'ARG'; args: Array<{ name: string; value?: string }> }
  | { kind: 'WORKDIR'; path: string }
  | { kind: 'USER'; user: string }
  | { kind: 'CMD' | 'ENTRYPOINT'; command: CommandForm }
  | { kind: 'EXPOSE'; ports: string[] }
  | { kind: 'LABEL'; pairs: Array<[string, string]> }
  | { kind: 'VOLUME'; paths: string[] }
  | { kind: 'STOPSIGNAL'; signal: string }
  | { kind: 'HEALTHCHECK'; health: HealthConfig }
  | { kind: 'SHELL'; shell: string[] }
  | { kind: 'ONBUILD'; trigger: string }
  | { kind: 'MAINTAINER'; name: string };

/** The image config's `Healthcheck`, as docker stores it (durations in nanoseconds). */
export interface HealthConfig {
  /** `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "cmd"]`. */
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}
