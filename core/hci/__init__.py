"""HCI truth from btsnoop captures (DESIGN §4.5, §9): a streaming reader, a writer, A2DP."""
