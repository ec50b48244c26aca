/** Build requests the build tests share. */

/** A Python 3.12 arm64 build of the folder /s into /o (paths never touched: for argument and recipe checks). */
export const python312Arm64Request = {
  language: "python" as const,
  runtime: "python3.12",
  architecture: "arm64" as const,
  sourceDir: "/s",
  outDir: "/o",
};
