/**
 * One follow of a pod's log through the Kubernetes API (GET …/pods/<pod>/log?follow=true), chunk by chunk.
 * Why not client-node's Log.log: it pipes the response into the caller's stream with `pipe`, so a dropped
 * connection leaves that stream open forever (the caller hangs) and emits an unhandled 'error' (the process
 * crashes). Here the answer goes through stream.pipeline: a drop ends this follow with 'dropped', and the
 * caller decides whether to follow again.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KubeHttpError, openRequest, readText } from '../functions/shared/kube/transport';

export interface PodLogFollow {
  namespace: string;
  pod: string;
  container: string;
  tailLines?: number;
}

/** Calls `onChunk` with each piece of the log; 'ended' when the API server closed the stream, 'dropped' when the connection broke. */
export async function followPodLogOnce(req: PodLogFollow, onChunk: (chunk: Buffer) => void): Promise<'ended' | 'dropped'> {
  const res = await openRequest({
    method: 'GET',
    path: `/api/v1/namespaces/${encodeURIComponent(req.namespace)}/pods/${encodeURIComponent(req.pod)}/log`,
    query: { container: req.container, follow: 'true', tailLines: req.tailLines === undefined ? undefined : String(req.tailLines) },
    accept: '*/*',
  });
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) throw new KubeHttpError(status, await readText(res), res.headers);
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      onChunk(chunk);
      done();
    },
  });
  try {
    await pipeline(res, sink);
    return 'ended';
  } catch {
    return 'dropped';
  }
}
