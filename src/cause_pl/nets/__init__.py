"""Plain torch.nn.Module networks: the CAUSE speech-to-AU nets and GANimation (G, critic)."""
