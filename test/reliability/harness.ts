/**
 * Shared plumbing for the reliability suite: `useSources()` (the hooks every file shares: the Bitbucket and
 * GitHub emulators over one fixture repository, the file's bucket and clients, faults cleared after each test),
 * a runner for the sync core (real config loader, real adapters and HTTP client, real S3 and SSM clients on
 * moto) whose retry back-off is recorded instead of slept, a runner for the CLI, and readers for what ended up
 * in S3 and SSM. Everything a runner captures goes through `scan()` (see `secrets.ts`).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, GetParameterHistoryCommand, SSMClient } from "@aws-sdk/client-ssm";
import * as tar from "tar-stream";
import { afterAll, afterEach, beforeAll } from "vitest";
import { main } from "../../cli/main.ts";
import { type Flags, loadSyncConfig } from "../../lib/common/config.ts";
import type { RunDeadline } from "../../lib/common/deadline.ts";
import { describeError } from "../../lib/common/errors.ts";
import type { Logger } from "../../lib/common/log.ts";
import { createSource } from "../../lib/sources/index.ts";
import { runSync, type SyncSummary } from "../../lib/sync/sync.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import type { FaultTarget } from "../emulators/server.ts";
import { type FixtureRepo, pseudoRandomBytes, standardRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { captureIo, readZip } from "../support/zip.ts";
import { BITBUCKET_API_SECRET, BITBUCKET_API_USER, BITBUCKET_TOKEN, GITHUB_TOKEN, scan } from "./secrets.ts";

export type Provider = "bitbucket" | "github";

export interface Sources {
  repo: FixtureRepo;
  bb: BitbucketEmulator;
  gh: GitHubEmulator;
  /** A scratch directory removed by `close()`. */
  dir: string;
  close(): Promise<void>;
}

/** The standard repository (with a small big file) plus `layers/data`, a folder with one 96 KiB file. */
export async function startSources(
  options: { bitbucket?: Partial<Parameters<typeof startBitbucketEmulator>[0]> } = {},
): Promise<Sources> {
  const repo = standardRepo({ bigFileBytes: 64 * 1024 });
  repo.commit("main", {
    "layers/data/blob.bin": { kind: "file", content: pseudoRandomBytes(96 * 1024, 42) },
    "layers/data/notes.txt": { kind: "file", content: Buffer.from("notes\n") },
  });
  const bb = await startBitbucketEmulator({
    repos: [repo],
    accessTokens: [BITBUCKET_TOKEN],
    apiTokens: [{ email: BITBUCKET_API_USER, token: BITBUCKET_API_SECRET }],
    scopelessTokens: ["bb-scopeless-token"],
    ...options.bitbucket,
  });
  const gh = await startGitHubEmulator({ repos: [repo], tokens: [GITHUB_TOKEN] });
  const dir = await mkdtemp(join(tmpdir(), "ls-reliability-"));
  return {
    repo,
    bb,
    gh,
    dir,
    close: async () => {
      await Promise.all([bb.close(), gh.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Destroyable {
  destroy(): void;
}

/** A file's emulators and AWS clients, started and stopped by the hooks `useSources()` registers. */
export interface SourcesFixture extends Sources {
  /** The file's own bucket (only when `useSources` was given a `bucket` label). */
  readonly bucket: string;
  /** S3 and SSM clients for the file, destroyed after its last test. */
  readonly s3: S3Client;
  readonly ssm: SSMClient;
  /** A fresh scope (own prefixes) in the file's bucket, read and written with the file's clients. */
  scope(): AwsScope;
  /** Destroys `client` after the file's last test. */
  own<T extends Destroyable>(client: T): T;
  /** Destroys `client` after the current test (for clients a test injects faults into). */
  perTest<T extends Destroyable>(client: T): T;
  /** The emulator that serves `provider`. */
  emulator(provider: Provider): BitbucketEmulator | GitHubEmulator;
}

export interface UseSourcesOptions {
  /** Create a bucket for the file, named from this label. */
  bucket?: string;
  /** Options for the Bitbucket emulator. */
  bitbucket?: Partial<Parameters<typeof startBitbucketEmulator>[0]>;
  /** Runs once after the emulators started (e.g. commits the file's own folders). */
  setup?: (sources: Sources) => void | Promise<void>;
}

/**
 * Registers the hooks every reliability file needs: before all tests, start the emulators (and create the
 * bucket, then run `setup`); after each test, clear the emulators' faults and destroy per-test clients; after
 * all, stop the emulators and destroy the clients. The returned object is usable once the tests run.
 */
export function useSources(options: UseSourcesOptions = {}): SourcesFixture {
  let started: Sources | undefined;
  let bucket: string | undefined;
  const owned: Destroyable[] = [];
  const perTest: Destroyable[] = [];
  const live = (): Sources => {
    if (!started) throw new Error("useSources: the emulators start in beforeAll; use them inside a test or hook");
    return started;
  };
  const own = <T extends Destroyable>(client: T): T => {
    owned.push(client);
    return client;
  };
  const s3 = own(new S3Client({}));
  const ssm = own(new SSMClient({}));
  beforeAll(async () => {
    started = await startSources(options.bitbucket ? { bitbucket: options.bitbucket } : {});
    if (options.bucket !== undefined) bucket = await createBucket(uniqueName(options.bucket));
    await options.setup?.(started);
  });
  afterEach(() => {
    started?.bb.clearFaults();
    started?.gh.clearFaults();
    for (const client of perTest.splice(0)) client.destroy();
  });
  afterAll(async () => {
    await started?.close();
    for (const client of owned.splice(0)) client.destroy();
  });
  return {
    get repo() {
      return live().repo;
    },
    get bb() {
      return live().bb;
    },
    get gh() {
      return live().gh;
    },
    get dir() {
      return live().dir;
    },
    close: () => live().close(),
    get bucket() {
      if (bucket === undefined) throw new Error("useSources: no bucket was asked for (pass { bucket: label })");
      return bucket;
    },
    s3,
    ssm,
    scope() {
      return awsScope(s3, ssm, this.bucket);
    },
    own,
    perTest(client) {
      perTest.push(client);
      return client;
    },
    emulator: (provider) => (provider === "bitbucket" ? live().bb : live().gh),
  };
}

let branches = 0;

/** A new branch off `main` (so a test's commits never change what another test sees). */
export function branch(repo: FixtureRepo, label = "b"): string {
  const name = `rel/${label}-${++branches}`;
  repo.branches.set(name, repo.branches.get("main") as string);
  return name;
}

/** Commit a change to `folder` on `name` and return the new commit. */
export function touch(repo: FixtureRepo, name: string, folder: string, text = `changed ${Date.now()}`): string {
  return repo.commit(name, { [`${folder}/CHANGED.txt`]: { kind: "file", content: Buffer.from(`${text}\n`) } });
}

export function tokenFor(provider: Provider): string {
  return provider === "github" ? GITHUB_TOKEN : BITBUCKET_TOKEN;
}

/** The settings that point a run at the emulators. */
export function sourceEnv(sources: Sources, provider: Provider): Record<string, string> {
  return provider === "github"
    ? { SOURCE_PROVIDER: "github", SOURCE_REPOSITORY: "acme/layers", SOURCE_API_URL: sources.gh.apiUrl }
    : {
        SOURCE_PROVIDER: "bitbucket",
        SOURCE_REPOSITORY: "acme/layers",
        SOURCE_API_URL: sources.bb.apiUrl,
        SOURCE_WEB_URL: sources.bb.webUrl,
      };
}

/** Where one test's artifacts and pointers live: its own parameter and key prefixes in a shared bucket. */
export interface AwsScope {
  s3: S3Client;
  ssm: SSMClient;
  bucket: string;
  /** PARAMETER_PREFIX */
  prefix: string;
  /** ARTIFACT_PREFIX */
  artifactPrefix: string;
}

export function awsScope(s3: S3Client, ssm: SSMClient, bucket: string): AwsScope {
  return { s3, ssm, bucket, prefix: `/${uniqueName("rel")}`, artifactPrefix: `${uniqueName("art")}/` };
}

export interface CoreOptions {
  provider: Provider;
  paths: string[];
  ref?: string;
  strategy?: "auto" | "walk" | "archive";
  /** Extra settings as environment variables (e.g. SOURCE_MAX_RETRIES). */
  env?: Record<string, string>;
  /** Settings as CLI flags. */
  flags?: Flags;
  token?: string | undefined;
  outDir?: string;
  aws?: AwsScope;
  /** The run's start time (keys are timestamped with it). */
  clock?: Date;
  /** The HTTP client's clock (rate-limit resets are measured against it); default the real one. */
  now?: () => number;
  force?: boolean;
  deadline?: RunDeadline;
}

export interface CoreRun {
  summary: SyncSummary | undefined;
  /** What runSync threw (a run-level failure), if anything. */
  error: Error | undefined;
  /** The retry waits the HTTP client asked for, in ms (recorded, not slept). */
  waits: number[];
  logs: string[];
}

/** Run the sync core once against the emulators; back-off is recorded instead of slept. */
export async function runCore(sources: Sources, o: CoreOptions): Promise<CoreRun> {
  const env: Record<string, string> = {
    ...sourceEnv(sources, o.provider),
    SOURCE_PATHS: o.paths.join(","),
    SOURCE_STRATEGY: o.strategy ?? "walk",
    SOURCE_MAX_RETRIES: "3",
    ...(o.ref ? { SOURCE_REF: o.ref } : {}),
    ...(o.aws
      ? { ARTIFACT_BUCKET: o.aws.bucket, PARAMETER_PREFIX: o.aws.prefix, ARTIFACT_PREFIX: o.aws.artifactPrefix }
      : {}),
    ...o.env,
  };
  const config = loadSyncConfig({ env, flags: o.flags ?? {} }, { requireBucket: o.outDir === undefined });
  const waits: number[] = [];
  const logs: string[] = [];
  const line = (level: string) => (message: string, extra?: Record<string, unknown>) => {
    logs.push(scan(`core ${level} log`, `${level}: ${message} ${extra ? JSON.stringify(extra) : ""}`));
  };
  const logger: Logger = { info: line("info"), warn: line("warn"), error: line("error") };
  const token = "token" in o ? o.token : tokenFor(o.provider);
  const bundle = createSource(config.source, token, {
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...(o.deadline ? { runDeadline: o.deadline } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
  const clock = o.clock ?? new Date();
  let summary: SyncSummary | undefined;
  let error: Error | undefined;
  try {
    summary = await runSync(
      config,
      { outDir: o.outDir, force: o.force ?? false },
      {
        source: bundle.source,
        requestCount: () => bundle.http.requestCount,
        s3: o.aws?.s3,
        ssm: o.aws?.ssm,
        clock: () => clock,
        workDir: join(sources.dir, "work"),
        exclusiveWorkDir: false,
        logger,
        ...(o.deadline ? { deadline: o.deadline } : {}),
      },
    );
    scan("sync summary", summary);
  } catch (caught) {
    error = caught instanceof Error ? caught : new Error(String(caught));
    scan("sync error", error);
    scan("sync error, described", describeError(error));
  } finally {
    await bundle.http.close();
  }
  return { summary, error, waits, logs };
}

/** The one package of a run, failing the test when the run itself failed. */
export function onlyPackage(run: CoreRun): SyncSummary["packages"][number] {
  if (run.error) throw new Error(`the run failed: ${run.error.message}`);
  const p = run.summary?.packages[0];
  if (!p) throw new Error("the run reported no package");
  return p;
}

/** The bytes of the zip a `--out` run wrote for its one package. */
export async function zipBytes(outDir: string, run: CoreRun): Promise<Buffer> {
  const p = onlyPackage(run);
  if (p.error) throw new Error(`package ${p.name} failed: ${p.error}`);
  const bytes = await readFile(join(outDir, ...(p.key ?? "").split("/")));
  await readZip(bytes); // yauzl with CRC-32, unzip -t and zipfile accept it
  return bytes;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in-process; stdout and stderr are scanned for tokens. */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const cap = captureIo();
  const code = await main(args, env, cap.io);
  return { code, stdout: scan("CLI stdout", cap.stdout()), stderr: scan("CLI stderr", cap.stderr()) };
}

/** Match one request path on one emulated host, optionally by method. */
export function on(host: string, pattern: RegExp): (t: FaultTarget) => boolean {
  return (t) => t.host === host && pattern.test(decodeURIComponent(t.path));
}

export async function pointerOf(ssm: SSMClient, prefix: string, pkg: string): Promise<string | undefined> {
  try {
    const res = await ssm.send(new GetParameterCommand({ Name: `${prefix}/${pkg}/artifact-key` }));
    return res.Parameter?.Value;
  } catch (error) {
    if ((error as Error).name === "ParameterNotFound") return undefined;
    throw error;
  }
}

/** Every value the pointer ever held, oldest first. */
export async function pointerHistory(ssm: SSMClient, prefix: string, pkg: string): Promise<string[]> {
  const res = await ssm.send(new GetParameterHistoryCommand({ Name: `${prefix}/${pkg}/artifact-key` }));
  return (res.Parameters ?? []).map((p) => p.Value ?? "");
}

export async function keysUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key ?? "").sort();
}

/** Times one minute apart, so runs' keys sort in the order the test means. */
export function minute(n: number): Date {
  return new Date(Date.UTC(2026, 10, 21, 10, n, 0));
}

export interface TarSpec {
  name: string;
  type?: "file" | "directory" | "symlink" | "link";
  content?: string;
  linkname?: string;
  mode?: number;
  /** pax records, e.g. `{ path }` for a name a ustar header cannot hold (a NUL byte). */
  pax?: Record<string, string>;
}

/** A hand-made .tar.gz (for hostile archives), entries in the order given. */
export async function tarball(entries: TarSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  type Header = Parameters<tar.Pack["entry"]>[0];
  for (const e of entries) {
    const body = e.content === undefined ? undefined : Buffer.from(e.content);
    const header = {
      name: e.name,
      type: e.type ?? "file",
      mode: e.mode ?? (e.type === "directory" ? 0o775 : 0o664),
      ...(body ? { size: body.length } : {}),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.pax ? { pax: e.pax } : {}),
    } as unknown as Header;
    await new Promise<void>((resolve, reject) => {
      const cb = (error?: Error | null) => (error ? reject(error) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}
