import { fileURLToPath } from 'node:url';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

/** How every function of the responder is bundled: one ESM file per handler, built by local esbuild. */
export const RESPONDER_BUNDLING: nodejs.BundlingOptions = {
  format: nodejs.OutputFormat.ESM,
  target: 'node24',
  mainFields: ['module', 'main'],
  minify: true,
  // An external map without sources: readable stack traces, while Lambda loads only the code.
  sourceMap: true,
  sourceMapMode: nodejs.SourceMapMode.DEFAULT,
  sourcesContent: false,
  // Some dependencies still call require(); ESM output has none unless we provide it.
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
};

/**
 * The props every responder function shares (Node.js 24 on arm64, X-Ray, Powertools log level,
 * source maps, the bundling above), so that each construct states only what is its own:
 * description, memory, timeout, role, log group and extra settings.
 *
 * @param entry the handler file, relative to the repository root (e.g. `functions/handlers/detect.ts`)
 * @param environment the function's own environment variables
 */
export function responderFunctionProps(
  entry: string,
  environment: Readonly<Record<string, string>>,
): nodejs.NodejsFunctionProps {
  return {
    entry: `${repositoryRoot}${entry}`,
    handler: 'handler',
    projectRoot: repositoryRoot,
    depsLockFilePath: `${repositoryRoot}package-lock.json`,
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    tracing: lambda.Tracing.ACTIVE,
    environment: { POWERTOOLS_LOG_LEVEL: 'INFO', NODE_OPTIONS: '--enable-source-maps', ...environment },
    bundling: RESPONDER_BUNDLING,
  };
}
