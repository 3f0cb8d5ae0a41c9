/**
 * Where training and serving pods run: GPUs (`nvidia.com/gpu`), a node selector, tolerations and a
 * priority class. The schemas check each value with the Kubernetes API's own rules (k8s-names.ts), so a
 * value every pod would be refused for (422) fails at synth or at the Lambda's init, naming the setting;
 * podPlacement renders only what is set, so the defaults leave a pod spec exactly as it was. Pure: the CDK
 * app imports it too.
 */
import * as z from 'zod';
import type { V1PodSpec, V1ResourceRequirements } from '@kubernetes/client-node';
import { dns1123SubdomainProblem, labelValueProblem, qualifiedNameProblem, tolerationProblems, type Toleration } from './k8s-names';

/** The extended resource the NVIDIA device plugin advertises on GPU nodes. */
export const GPU_RESOURCE = 'nvidia.com/gpu';

/** A node selector: label keys (qualified names) to label values, as the API validates pod.spec.nodeSelector. */
export const NodeSelectorSchema = z.record(z.string(), z.string('values must be strings')).superRefine((selector, ctx) => {
  for (const [key, value] of Object.entries(selector)) {
    const keyProblem = qualifiedNameProblem(key);
    if (keyProblem !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `invalid label key: ${keyProblem}` });
    const valueProblem = labelValueProblem(value);
    if (valueProblem !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `invalid label value "${value}": ${valueProblem}` });
  }
});

const TolerationSchema = z
  .strictObject({
    key: z.string().optional(),
    operator: z.string().optional(),
    value: z.string().optional(),
    effect: z.string().optional(),
    tolerationSeconds: z.number().int('must be a whole number of seconds').optional(),
  })
  .superRefine((t, ctx) => {
    for (const p of tolerationProblems(t)) ctx.addIssue({ code: 'custom', path: [p.field], message: p.message });
  });

/** Tolerations, each checked as kube-apiserver checks pod.spec.tolerations[i]. */
export const TolerationsSchema = z.array(TolerationSchema, 'must be a list of tolerations');

/** Where a workload's pods run; every field optional, and an empty object changes nothing. */
export const PlacementSchema = z.strictObject({
  /** GPUs per pod: the container's `nvidia.com/gpu` limit. */
  gpus: z.number('must be a whole number').int('must be a whole number').min(0, 'must be >= 0').max(64, 'must be <= 64').optional(),
  nodeSelector: NodeSelectorSchema.optional(),
  tolerations: TolerationsSchema.optional(),
  /** A PriorityClass name: a DNS-1123 subdomain (the class itself must exist in the cluster). */
  priorityClassName: z
    .string()
    .superRefine((v, ctx) => {
      const p = dns1123SubdomainProblem(v);
      if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
    })
    .optional(),
});

/** A workload's placement, as loaded from its setting (TRAINING_PLACEMENT, SERVING_PLACEMENT). */
export type Placement = z.infer<typeof PlacementSchema>;

/** The construct prop of a placement (same fields; checked with PlacementSchema at synth). */
export interface PlacementProps {
  /** GPUs per pod (the container's `nvidia.com/gpu` limit), 0 to 64. @default 0 */
  readonly gpus?: number;
  /** Node labels the pods must run on, e.g. `{ "karpenter.sh/nodepool": "gpu" }`. @default {} */
  readonly nodeSelector?: Record<string, string>;
  /** Tolerations of the pods, for the taints of the nodes they should run on. @default [] */
  readonly tolerations?: Toleration[];
  /** PriorityClass of the pods (it must exist in the cluster). @default none */
  readonly priorityClassName?: string;
}

/** The pod-spec fields of a placement; only what is set (an empty placement adds nothing). */
export function podPlacement(p: Placement): Partial<V1PodSpec> {
  return {
    ...(p.nodeSelector && Object.keys(p.nodeSelector).length ? { nodeSelector: { ...p.nodeSelector } } : {}),
    ...(p.tolerations?.length ? { tolerations: p.tolerations.map((t) => ({ ...t })) } : {}),
    ...(p.priorityClassName ? { priorityClassName: p.priorityClassName } : {}),
  };
}

/**
 * A container's resources with the placement's GPUs as a limit. Extended resources cannot be overcommitted:
 * the API sets the request equal to the limit, and a node without the device plugin never fits the pod.
 */
export function withGpus(resources: V1ResourceRequirements, p: Placement): V1ResourceRequirements {
  if (!p.gpus) return resources;
  return { ...resources, limits: { ...resources.limits, [GPU_RESOURCE]: String(p.gpus) } };
}
