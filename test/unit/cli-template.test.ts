import { describe, expect, it } from 'vitest';
import { goString, renderGoTemplate as r } from '../../cli/template.js';
import { renderTemplate } from '../../cli/format.js';

const c = {
  Id: 'abc123',
  Name: '/web',
  State: { Status: 'running', Running: true, Pid: 42, ExitCode: 0 },
  Config: { Cmd: ['sleep', '60'], Labels: { app: 'shop', tier: 'front' }, Env: [] as string[] },
  Mounts: [{ Source: '/a', Destination: '/x' }, { Source: '/b', Destination: '/y' }],
  HostConfig: { Memory: 0, RestartPolicy: null },
};

describe('Go templates as docker --format reads them', () => {
  it('walks nested fields', () => {
    expect(r('{{.State.Status}} {{.State.Pid}} {{ .Name }}', c)).toBe('running 42 /web');
  });
  it('prints values as Go fmt does', () => {
    expect(r('{{.Config.Cmd}}', c)).toBe('[sleep 60]');
    expect(r('{{.Config.Labels}}', c)).toBe('map[app:shop tier:front]');
    expect(r('{{.HostConfig.RestartPolicy}}|{{.Config.Labels.nope}}', c)).toBe('<nil>|<no value>');
    expect(goString({ b: 1, a: [true, null] })).toBe('map[a:[true <nil>] b:1]');
  });
  it('json, index, join, len, upper and pipelines', () => {
    expect(r('{{json .Config.Labels}}', c)).toBe('{"app":"shop","tier":"front"}');
    expect(r('{{json .}}', { A: 1 })).toBe('{"A":1}');
    expect(r('{{index .Config.Labels "app"}}', c)).toBe('shop');
    expect(r('{{index .Config.Cmd 1}}', c)).toBe('60');
    expect(r('{{join .Config.Cmd " "}}', c)).toBe('sleep 60');
    expect(r('{{len .Mounts}}', c)).toBe('2');
    expect(r('{{.Name | upper}} {{truncate .Id 3}}', c)).toBe('/WEB abc');
    expect(r('{{printf "%-6s|%03d" .State.Status .State.Pid}}', c)).toBe('running|042');
    expect(r('{{(index .Mounts 1).Source}}', c)).toBe('/b');
  });
  it('range, if/else if/else, with, and $', () => {
    expect(r('{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}', c)).toBe('/a:/x /b:/y ');
    expect(r('{{range .Config.Env}}x{{else}}none{{end}}', c)).toBe('none');
    expect(r('{{range .Mounts}}{{$.Name}}{{end}}', c)).toBe('/web/web');
    expect(r('{{if .State.Running}}up{{else}}down{{end}}', c)).toBe('up');
    expect(r('{{if eq .State.Status "exited"}}E{{else if eq .State.Status "running"}}R{{else}}?{{end}}', c)).toBe('R');
    expect(r('{{if and .State.Running (gt .State.Pid 40)}}big{{end}}', c)).toBe('big');
    expect(r('{{with .Config.Labels}}{{.tier}}{{end}}', c)).toBe('front');
  });
  it('variables: range $k, $v :=, $x :=, and $ for the whole', () => {
    expect(r('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', c)).toBe('app=shop;tier=front;');
    expect(r('{{range $i, $m := .Mounts}}{{$i}}:{{$m.Source}} {{end}}', c)).toBe('0:/a 1:/b ');
    expect(r('{{range $m := .Mounts}}{{$m.Destination}}{{end}}', c)).toBe('/x/y');
    expect(r('{{$n := .Name}}{{range .Mounts}}{{$n}}{{end}}', c)).toBe('/web/web');
    expect(() => r('{{range .Mounts}}{{$m := .Source}}{{end}}{{$m}}', c)).toThrow(/undefined variable "\$m"/);
  });
  it('string literals with Go escapes; \\t and \\n outside actions only', () => {
    expect(r('{{join .Config.Cmd "\\n"}}', c)).toBe('sleep\n60');
    expect(r('{{printf "%s\\t%s" .Name .Id}}', c)).toBe('/web\tabc123');
    expect(r('{{"\\x41\\101"}}', c)).toBe('AA');
    expect(renderTemplate('{{.Name}}\\t{{join .Config.Cmd "\\t"}}', c)).toBe('/web\tsleep\t60');
    expect(() => r('{{"\\q"}}', c)).toThrow(/bad string literal/);
  });
  it('index of a missing key is Go\'s zero value; inherited properties are not fields', () => {
    expect(r('[{{index .Config.Labels "nope"}}]', c)).toBe('[]');
    expect(r('{{.Config.Labels.constructor}}', c)).toBe('<no value>');
  });
  it('trims whitespace around {{- and -}}', () => {
    expect(r('a  {{- .Name -}}  b', c)).toBe('a/webb');
  });
  it('names the mistake in a bad template', () => {
    expect(() => r('{{.Nope}}', c)).toThrow(/no field "Nope" \(fields: Id, Name/);
    expect(() => r('{{if .Name}}x', c)).toThrow(/unclosed \{\{if\}\}/);
    expect(() => r('{{end}}', c)).toThrow(/unexpected \{\{end\}\}/);
    expect(() => r('{{frob .Name}}', c)).toThrow(/function "frob" not defined/);
    expect(() => r('{{.Name.First}}', c)).toThrow(/can't evaluate field First/);
  });
});
