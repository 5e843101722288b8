"""Generated C: producing C text, writing it into a content-addressed cache, compiling it, loading it."""
