/**
 * Path safety for every name that comes from a source API or an archive. A name is accepted only if it
 * is a plain relative path that stays inside its folder: no NUL bytes, no backslashes, no absolute paths,
 * no empty, "." or ".." segments. Symlink targets must resolve inside the folder too.
 */
import { posix } from "node:path";
import { PathSafetyError } from "./errors.ts";

const MAX_SEGMENT_BYTES = 255;
const MAX_PATH_BYTES = 4096;

/**
 * Text from outside (names, SSM values, S3 metadata) with every control character (C0, DEL and C1) written
 * as `\xNN`, so that printing it can never move the cursor, recolour or clear a terminal, or ring its bell.
 */
export function escapeControls(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Quote a hostile name for an error message without letting control characters through. */
export function quoteName(name: string): string {
  return JSON.stringify(escapeControls(name));
}

/** Check a path relative to `folder`; returns it unchanged or throws `PathSafetyError` naming the entry. */
export function checkRelativePath(name: string, folder: string): string {
  const where = `entry ${quoteName(name)} in folder "${folder}"`;
  if (name === "") throw new PathSafetyError(`${where} has an empty name`);
  if (name.includes("\0")) throw new PathSafetyError(`${where} contains a NUL byte`);
  if (name.includes("\\")) throw new PathSafetyError(`${where} contains a backslash`);
  if (name.startsWith("/")) throw new PathSafetyError(`${where} is an absolute path`);
  if (/^[A-Za-z]:/.test(name)) throw new PathSafetyError(`${where} looks like a drive-letter path`);
  const segments = name.split("/");
  for (const s of segments) {
    if (s === "..") throw new PathSafetyError(`${where} has a ".." segment and would leave the folder`);
    if (s === "" || s === ".") throw new PathSafetyError(`${where} has an empty or "." segment`);
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) throw new PathSafetyError(`${where} has a segment over 255 bytes`);
  }
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) throw new PathSafetyError(`${where} is longer than 4096 bytes`);
  return name;
}

/** Check that a symlink at `linkPath` (relative to the folder) pointing at `target` stays inside the folder. */
export function checkSymlinkTarget(linkPath: string, target: string, folder: string): string {
  const where = `symlink ${quoteName(linkPath)} in folder "${folder}"`;
  if (target === "") throw new PathSafetyError(`${where} has an empty target`);
  if (target.includes("\0")) throw new PathSafetyError(`${where} has a target containing a NUL byte`);
  if (target.includes("\\")) throw new PathSafetyError(`${where} has a target containing a backslash`);
  if (target.startsWith("/")) {
    throw new PathSafetyError(`${where} points to absolute path ${quoteName(target)}, which leaves the folder`);
  }
  const resolved = posix.normalize(posix.join(posix.dirname(linkPath), target));
  if (resolved === ".." || resolved.startsWith("../")) {
    throw new PathSafetyError(`${where} points to ${quoteName(target)}, which leaves the folder`);
  }
  return target;
}

/**
 * Check that no symlink of a folder leaves it when followed through the folder's other symlinks, as the
 * system would follow it once the layer is extracted. `escape -> sub/up/..` stays inside on paper, but
 * leaves when `sub/up` is itself a link to `..`. `links` are the folder's symlinks, relative to the folder.
 * A cycle never resolves (the system gives up after 40 links), so it cannot leave the folder either.
 */
export function checkSymlinkChains(links: readonly { path: string; target?: string | undefined }[], folder: string) {
  const targets = new Map(links.map((l) => [l.path, l.target ?? ""]));
  for (const [path, target] of targets) {
    const stack = path.split("/").slice(0, -1);
    let pending = target.split("/");
    let via: string | undefined;
    for (let hops = 0; pending.length > 0 && hops <= 40; ) {
      const segment = pending.shift() as string;
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (stack.pop() === undefined) {
          throw new PathSafetyError(
            `symlink ${quoteName(path)} in folder "${folder}" points to ${quoteName(target)}, which leaves the folder${
              via === undefined ? "" : ` through symlink ${quoteName(via)}`
            }`,
          );
        }
        continue;
      }
      stack.push(segment);
      const next = targets.get(stack.join("/"));
      if (next === undefined) continue;
      hops++;
      via = stack.join("/");
      stack.pop();
      pending = [...next.split("/"), ...pending];
    }
  }
}

/** The path of `full` relative to `folder`, or undefined when it is not inside it. */
export function relativeTo(folder: string, full: string): string | undefined {
  const prefix = `${folder}/`;
  return full.startsWith(prefix) && full.length > prefix.length ? full.slice(prefix.length) : undefined;
}
