"""The Textual app. Screens call services; nothing here holds domain rules."""
