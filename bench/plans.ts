/** The calc-dag plan every local benchmark runs: three calculations, then their sum (1133). */
export const calcDag = {
  prompt: "calc-dag",
  plan: {
    steps: [
      { step_number: 1, tool_name: "calculator", tool_input: { expression: "12*7" } },
      { step_number: 2, tool_name: "calculator", tool_input: { expression: "100/4" } },
      { step_number: 3, tool_name: "calculator", tool_input: { expression: "2^10" } },
      {
        step_number: 4,
        tool_name: "calculator",
        tool_input: { expression: "{{steps.1.output}} + {{steps.2.output}} + {{steps.3.output}}" },
      },
    ],
  },
};
