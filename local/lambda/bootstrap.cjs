/**
 * The inside of one local Lambda "container" (a worker thread, see runtime.ts): loads the function's
 * bundle the way the Node.js runtime does (init once, with the template's environment), then answers
 * invocations one at a time. Results cross as JSON, like Lambda's; errors as { errorType, errorMessage,
 * trace }. Plain CommonJS so the worker needs no TypeScript loader.
 */
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');

// The runtime's compile cache (runtime.ts compileCacheDir): a bundle compiled by an earlier run loads from it.
if (workerData.compileCacheDir) require('node:module').enableCompileCache(workerData.compileCacheDir);
// The template's NODE_OPTIONS (kept out of the worker's env, where Node would apply it: runtime.ts), in the
// function's environment; its --enable-source-maps as traces mapped when one is written (lazy-source-maps.cjs
// says why not at load).
if (workerData.nodeOptions !== undefined) process.env.NODE_OPTIONS = workerData.nodeOptions;
if (/--enable-source-maps/.test(process.env.NODE_OPTIONS || '')) require('../lazy-source-maps.cjs').mapStackTraces(require('node:path').dirname(workerData.file));

function serialize(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    errorType: e.name || 'Error',
    errorMessage: e.message,
    trace: String(e.stack || '').split('\n'),
  };
}

async function load() {
  const { file, exportName } = workerData;
  const mod = file.endsWith('.mjs') ? await import(pathToFileURL(file).href) : require(file);
  const fn = mod[exportName] ?? (mod.default && mod.default[exportName]);
  if (typeof fn !== 'function') {
    const e = new Error(`${exportName} is undefined or not exported`);
    e.name = 'Runtime.HandlerNotFound';
    throw e;
  }
  return fn;
}

const handlerPromise = load();
// Reported at the first invocation, as Lambda reports an init error; not an unhandled rejection.
handlerPromise.catch(() => undefined);
// Init is over (either way): the runtime's prewarm then loads the next bundle (runtime.ts prewarm).
handlerPromise.then(
  () => parentPort.postMessage({ initDone: true }),
  () => parentPort.postMessage({ initDone: true }),
);

parentPort.on('message', async (msg) => {
  const { id, payload, deadlineMs, requestId } = msg;
  let handler;
  try {
    handler = await handlerPromise;
  } catch (err) {
    // An init error fails every invocation of this container; the runtime then discards it.
    parentPort.postMessage({ id, init: true, error: serialize(err) });
    return;
  }
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: workerData.arn,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const result = await handler(JSON.parse(payload), context);
    parentPort.postMessage({ id, payload: result === undefined ? 'null' : JSON.stringify(result) });
  } catch (err) {
    parentPort.postMessage({ id, error: serialize(err) });
  }
});
