/** What the bench asks a worker process to do, and what the worker reports back. */
import type { Provider, Strategy } from "../lib/sources/types.ts";

export interface SourceEndpoints {
  provider: Provider;
  /** Bitbucket: `http://127.0.0.1:P/2.0`; GitHub: `http://127.0.0.1:P`. */
  apiUrl: string;
  /** Bitbucket's web origin (archives); unused for GitHub. */
  webUrl: string;
  token: string;
  /** `owner/name` */
  repository: string;
}

/** The seed algorithm (Bitbucket only): sequential listing with the default page size, one GET per file, jszip. */
export interface BaselineJob {
  kind: "baseline";
  source: SourceEndpoints;
  ref: string;
  folder: string;
  outFile: string;
}

/** `layer-sync sync` through the real CLI entry point (`lib/cli.ts` `main`). */
export interface LayerSyncJob {
  kind: "layer-sync";
  source: SourceEndpoints;
  ref: string;
  folder: string;
  /** Several folders in one run (the packages table); `folder` is ignored then. */
  folders?: string[] | undefined;
  strategy: Strategy;
  workDir: string;
  /** Write zips here (no AWS); when undefined the run uses S3 and SSM. */
  outDir?: string | undefined;
  bucket?: string | undefined;
  parameterPrefix?: string | undefined;
  artifactPrefix?: string | undefined;
  concurrency?: number | undefined;
}

/** One archive download plus an in-memory zip of the folder's bytes: the physical floor. */
export interface LowerBoundJob {
  kind: "lower-bound";
  source: SourceEndpoints;
  commit: string;
  folder: string;
  /** Several folders from the one download, each zipped (the packages table); `folder` is ignored then. */
  folders?: string[] | undefined;
  outFile: string;
}

export type Job = BaselineJob | LayerSyncJob | LowerBoundJob;

export interface JobResult {
  ok: boolean;
  error?: string;
  /** Wall time of the measured operation (module loading and process start excluded). */
  wallMs: number;
  /** Requests the worker's own HTTP client sent (redirects and retries included). */
  clientRequests: number;
  /** Peak resident set size of the worker process, bytes. */
  maxRssBytes: number;
  /**
   * The RSS once the modules are loaded (before the clock starts), and `process.memoryUsage()` at the
   * highest RSS sampled during the run (see `sampleMemory` in worker.ts).
   */
  memory?: {
    loadedRssBytes: number;
    atPeak: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  };
  /** CPU time of the worker process during the operation, ms. */
  cpuMs: number;
  /** The zip produced (absolute path), when the run produced one. */
  zipFile?: string | undefined;
  /** layer-sync's summary (`--json` output), for layer-sync jobs. */
  summary?: unknown;
}

/** What the worker sends over IPC. */
export interface WorkerMessage {
  type: "result";
  result: JobResult;
}
