/**
 * The example model on S3 in the tfjs layers format (`model.json` + `weights.bin`, what
 * `tf.loadLayersModel` reads and `tensorflowjs_converter` writes), through custom tfjs IOHandlers so
 * neither side needs a local file. The trainer turns its Float32Array weights into a tfjs model and saves
 * it; the server loads it back into tfjs for inference.
 */
import * as tf from '@tensorflow/tfjs';
import type { MlpParams, MlpShape } from './mlp';
import { getBytes, parseS3Prefix, putBytes } from './s3';

// Production mode: skips per-op NaN checks and the "install tfjs-node" banner the cpu backend prints in Node.
tf.enableProdMode();

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/** The tfjs equivalent of mlp.ts's network, with the trained weights. */
export function toTfjsModel(shape: MlpShape, params: MlpParams): tf.Sequential {
  const model = tf.sequential({
    name: 'fashion_mnist_mlp',
    layers: [
      tf.layers.dense({ name: 'hidden', inputShape: [shape.inputs], units: shape.hidden, activation: 'relu' }),
      tf.layers.dense({ name: 'output', units: shape.classes, activation: 'softmax' }),
    ],
  });
  const weights = [
    tf.tensor2d(params.w1, [shape.inputs, shape.hidden]),
    tf.tensor1d(params.b1),
    tf.tensor2d(params.w2, [shape.hidden, shape.classes]),
    tf.tensor1d(params.b2),
  ];
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

/** Saves a tfjs model under `s3://bucket/prefix/` as model.json + weights.bin. Returns the two URIs. */
export async function saveModelToS3(model: tf.LayersModel, uri: string): Promise<string[]> {
  const { bucket, prefix } = parseS3Prefix(uri, 'MODEL_OUTPUT_URI');
  const written: string[] = [];
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (!artifacts.weightSpecs || artifacts.weightData === undefined) {
        throw new Error('tfjs produced a model without weights.');
      }
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      // The same document tfjs's own file and HTTP handlers write.
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs }],
      };
      // Weights first: a model.json that exists always has its weights beside it.
      await putBytes(bucket, prefix + WEIGHTS_FILE, weights, 'application/octet-stream');
      await putBytes(bucket, prefix + MODEL_FILE, JSON.stringify(modelJson), 'application/json');
      written.push(`s3://${bucket}/${prefix}${WEIGHTS_FILE}`, `s3://${bucket}/${prefix}${MODEL_FILE}`);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
  return written;
}

/** A tfjs LoadHandler reading model.json and the weight files it names from `s3://bucket/prefix/`. */
export function s3LoadHandler(uri: string): tf.io.IOHandler {
  const { bucket, prefix } = parseS3Prefix(uri, 'MODEL_URI');
  return {
    async load() {
      const text = Buffer.from(await getBytes(bucket, prefix + MODEL_FILE)).toString('utf8');
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(text) as tf.io.ModelJSON;
      } catch (err) {
        throw new Error(`s3://${bucket}/${prefix}${MODEL_FILE} is not JSON: ${(err as Error).message}`);
      }
      if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
        throw new Error(`s3://${bucket}/${prefix}${MODEL_FILE} is not a tfjs layers model (no modelTopology/weightsManifest).`);
      }
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const paths = manifest.flatMap((group) => group.paths);
        const parts = await Promise.all(
          paths.map(async (p) => {
            const bytes = await getBytes(bucket, prefix + p.replace(/^\.\//, ''));
            return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
          }),
        );
        return [specs, tf.io.CompositeArrayBuffer.join(parts)];
      });
    },
  };
}
