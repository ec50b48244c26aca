/**
 * `layer-sync sync` run in-process (cli/main.ts) against a source emulator's `acme/layers`, as the CLI tests
 * of each provider run it: its output captured, its work folder under the test's folder.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { main } from "../../cli/main.ts";
import { captureIo } from "./zip.ts";

/** An emulator as the CLI reaches it: the provider and its URLs (Bitbucket also has a web host). */
export interface SyncSource {
  provider: "bitbucket" | "github";
  apiUrl: string;
  webUrl?: string;
}

export interface CliSyncRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliSyncOptions {
  /** Pass `--json` (default true). */
  json?: boolean;
  /** Whether stderr is a terminal (default false). */
  tty?: boolean;
}

/** `layer-sync sync` with `args` against `source`, its work folder `out/work`. */
export async function cliSync(
  source: SyncSource,
  out: string,
  args: string[],
  env: Record<string, string>,
  options: CliSyncOptions = {},
): Promise<CliSyncRun> {
  const cap = captureIo(options.tty ?? false);
  const argv = [
    "sync",
    "--provider",
    source.provider,
    "--repository",
    "acme/layers",
    "--api-url",
    source.apiUrl,
    ...(source.webUrl ? ["--web-url", source.webUrl] : []),
    "--work-dir",
    join(out, "work"),
    ...(options.json === false ? [] : ["--json"]),
    ...args,
  ];
  const code = await main(argv, env, cap.io);
  return { code, stdout: cap.stdout(), stderr: cap.stderr() };
}

/** The flags of a sync of `layers/py-requests` and `layers/tools` at main with `strategy` into `dir`. */
export function twoFoldersAtMain(strategy: string, dir: string): string[] {
  return [
    "--ref",
    "main",
    "--path",
    "layers/py-requests",
    "--path",
    "layers/tools",
    "--strategy",
    strategy,
    "--out",
    dir,
  ];
}

/** The bytes of the zip `key` (as a summary names it) under the `--out` folder `dir`. */
export function readOutZip(dir: string, key: string): Promise<Buffer> {
  return readFile(join(dir, ...key.split("/")));
}
