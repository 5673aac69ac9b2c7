import { Graph, layout } from "@dagrejs/dagre";
import {
  type Edge,
  Handle,
  MarkerType,
  type Node,
  type NodeProps,
  Position,
  ReactFlow,
  type ReactFlowInstance,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { type KeyboardEvent, useEffect, useMemo, useRef, useState } from "react";
import type { PlanStep } from "../../../src/contracts/plan";
import type { ExecutionLogEntry } from "../../../src/contracts/run";
import type { EdgeKind, PlanEdge } from "../run-model";
import { Status } from "./status";

const NODE_W = 190;
const NODE_H = 64;

type StepData = {
  step: PlanStep;
  entry: ExecutionLogEntry | undefined;
  vertical: boolean;
  selected: boolean;
};
type StepNode = Node<StepData, "step">;

function StepNodeView({ data }: NodeProps<StepNode>) {
  const n = data.step.step_number;
  const status = data.entry?.status ?? "pending";
  return (
    <div
      className={`dag-node status-${status}${data.selected ? " selected" : ""}`}
      data-testid={`dag-node-${n}`}
      data-status={status}
    >
      <Handle type="target" position={data.vertical ? Position.Top : Position.Left} isConnectable={false} />
      <div className="dag-node-title">
        <span className="step-no">#{n}</span> {data.step.tool_name}
      </div>
      <Status status={status} label={attemptLabel(status, data.entry?.attempts ?? 0)} />
      <Handle type="source" position={data.vertical ? Position.Bottom : Position.Right} isConnectable={false} />
    </div>
  );
}

const attemptLabel = (status: string, attempts: number) => (attempts > 1 ? `${status} · try ${attempts}` : status);

const nodeTypes = { step: StepNodeView };

const EDGE_STYLE: Record<EdgeKind, { className: string; label?: string }> = {
  dependency: { className: "edge-dependency" },
  reference: { className: "edge-reference", label: "output" },
  resource: { className: "edge-resource", label: "order" },
};

/** Dagre's layered layout: ranks along the dependencies, crossings reduced. */
function place(steps: readonly PlanStep[], edges: readonly PlanEdge[], vertical: boolean) {
  const g = new Graph();
  g.setGraph({ rankdir: vertical ? "TB" : "LR", nodesep: 24, ranksep: 64, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of steps) g.setNode(String(s.step_number), { width: NODE_W, height: NODE_H });
  for (const e of edges) g.setEdge(String(e.from), String(e.to));
  layout(g);
  const at = new Map(
    steps.map((s) => {
      const p = g.node(String(s.step_number));
      return [s.step_number, { x: (p?.x ?? 0) - NODE_W / 2, y: (p?.y ?? 0) - NODE_H / 2 }];
    }),
  );
  return { at, width: g.graph().width ?? NODE_W, height: g.graph().height ?? NODE_H };
}

/** Fitting never shrinks the steps below legibility. */
const FIT = { padding: 0.15, maxZoom: 1.2, minZoom: 0.55 };

/**
 * The frame is as tall as the layout at the zoom fitting will use (the width decides it, within
 * `FIT`'s bounds), up to a screenful; a larger plan is panned (drag) or zoomed (the buttons).
 */
function frameHeight(layout: { width: number; height: number }, frameWidth: number): number {
  const zoom = Math.min(FIT.maxZoom, Math.max(FIT.minZoom, (frameWidth * (1 - FIT.padding)) / layout.width));
  return Math.round(Math.min(640, Math.max(200, layout.height * zoom * (1 + FIT.padding) + 24)));
}

/**
 * The plan as a graph: nodes are steps (tool, status as colour and text), edges are
 * dependencies, references and resource ordering. Click or press Enter on a node to select it.
 */
export function Dag({
  steps,
  edges,
  log,
  selected,
  onSelect,
}: {
  steps: readonly PlanStep[];
  edges: readonly PlanEdge[];
  log: readonly ExecutionLogEntry[];
  selected: number | null;
  onSelect: (step: number) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  const vertical = width < 640;
  const flow = useRef<ReactFlowInstance<StepNode, Edge> | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const { at: positions, ...extent } = useMemo(() => place(steps, edges, vertical), [steps, edges, vertical]);
  const byStep = useMemo(() => new Map(log.map((e) => [e.step_number, e])), [log]);
  // Selection is the page's, not xyflow's: the graph is read-only and controlled.
  const nodes: StepNode[] = useMemo(
    () =>
      steps.map((step) => ({
        id: String(step.step_number),
        type: "step",
        position: positions.get(step.step_number) ?? { x: 0, y: 0 },
        data: { step, entry: byStep.get(step.step_number), vertical, selected: selected === step.step_number },
        width: NODE_W,
        height: NODE_H,
        ariaLabel: `Step ${step.step_number}, ${step.tool_name}, ${byStep.get(step.step_number)?.status ?? "pending"}`,
      })),
    [steps, positions, byStep, vertical, selected],
  );
  const flowEdges: Edge[] = useMemo(
    () =>
      edges.map((e) => {
        const active = byStep.get(e.to)?.status === "running" || byStep.get(e.to)?.status === "waiting";
        return {
          id: `${e.from}-${e.to}`,
          source: String(e.from),
          target: String(e.to),
          // Into a step under way: drawn in the running colour (not xyflow's animated dashes, which
          // would read as the dashed "uses output" kind).
          className: `${EDGE_STYLE[e.kind].className}${active ? " edge-active" : ""}`,
          label: EDGE_STYLE[e.kind].label,
          markerEnd: { type: MarkerType.ArrowClosed },
          focusable: false,
          selectable: false,
        };
      }),
    [edges, byStep],
  );
  // A focused node (xyflow makes nodes focusable) is chosen with Enter or Space.
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const node = (e.target as HTMLElement).closest<HTMLElement>(".react-flow__node");
    if (node?.dataset.id && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      onSelect(Number(node.dataset.id));
    }
  };

  // The layout changes with the orientation, and the frame's height with the layout: fit again —
  // two frames on, once xyflow has measured the new frame (its ResizeObserver runs after this
  // frame's callbacks).
  const height = frameHeight(extent, width);
  // biome-ignore lint/correctness/useExhaustiveDependencies: refit when the layout or the frame does
  useEffect(() => {
    let frame = requestAnimationFrame(() => {
      frame = requestAnimationFrame(() => flow.current?.fitView(FIT));
    });
    return () => cancelAnimationFrame(frame);
  }, [positions, height]);

  return (
    <div className="dag-frame">
      {/* biome-ignore lint/a11y/noStaticElementInteractions: keys reach here from the focusable nodes inside */}
      <div className="dag" ref={box} onKeyDown={onKeyDown} style={{ height }}>
        <ReactFlow<StepNode, Edge>
          nodes={nodes}
          edges={flowEdges}
          nodeTypes={nodeTypes}
          onInit={(instance) => {
            flow.current = instance;
            instance.fitView(FIT);
          }}
          onNodeClick={(_, node) => onSelect(Number(node.id))}
          nodesDraggable={false}
          nodesConnectable={false}
          nodesFocusable
          edgesFocusable={false}
          elementsSelectable={false}
          zoomOnScroll={false}
          preventScrolling={false}
          minZoom={0.1}
          maxZoom={1.5}
          fitView
          fitViewOptions={FIT}
          ariaLabelConfig={{ "node.a11yDescription.default": "Press Enter to show this step's details." }}
        />
      </div>
      <div className="dag-tools">
        {/* Outside the graph, so they never cover a step. */}
        <fieldset className="zoom" aria-label="Graph zoom">
          <button type="button" aria-label="Zoom out" onClick={() => flow.current?.zoomOut()}>
            −
          </button>
          <button type="button" aria-label="Zoom in" onClick={() => flow.current?.zoomIn()}>
            +
          </button>
          <button type="button" onClick={() => flow.current?.fitView({ padding: 0.1 })}>
            Whole plan
          </button>
        </fieldset>
        <ul className="legend" aria-label="Edge kinds">
          <li>
            <span className="swatch edge-dependency" aria-hidden="true" /> dependency
          </li>
          <li>
            <span className="swatch edge-reference" aria-hidden="true" /> uses output
          </li>
          <li>
            <span className="swatch edge-resource" aria-hidden="true" /> resource order
          </li>
        </ul>
      </div>
    </div>
  );
}
