"""GitHub: App authentication, webhook signatures, API calls with rate-limit handling."""
