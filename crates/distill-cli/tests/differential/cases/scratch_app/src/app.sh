echo hello from app
